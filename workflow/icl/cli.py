"""Command-line interface: every pipeline step runs as `python -m icl <command>`, with or without Snakemake.

Structured arguments (a run's resolved config, a list of runs) are passed as JSON strings.
"""

import argparse
import gc
import json
import os
import sys
from pathlib import Path

from . import __version__

# The environment variable through which the workflow hands the execution settings to its jobs.
EXECUTION_VARIABLE = "ICL_EXECUTION"
# The commands that compute with torch on the CPU. Train and evaluate set their own threads; aggregate,
# figure and table never import torch, since they run where Snakemake runs (a cluster's login node).
TENSOR_COMMANDS = ("theory", "data", "baselines")
TORCH_COMMANDS = (*TENSOR_COMMANDS, "train", "evaluate", "ginc", "train-lm", "evaluate-lm", "aggregate-lm")


def _json(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text[:80]!r}") from error


def _named_path(text):
    name, sep, path = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def fault_drill() -> None:
    """Fail this command once, on purpose, when ICL_FAULT_DRILL names a marker file that does not exist yet.

    Used to test that a workflow recovers through retries; the marker makes the retry succeed.
    """
    marker = os.environ.get("ICL_FAULT_DRILL")
    if not marker:
        return
    Path(marker).parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # only one job can win
    except FileExistsError:
        return
    os.write(handle, f"failed once on purpose: {' '.join(sys.argv[1:3])}\n".encode())
    os.close(handle)
    raise SystemExit(f"fault drill: failing this attempt on purpose (marker {marker})")


def cmd_theory(args):
    from . import metrics, theory

    settings = args.theory
    if args.kind == "depth":
        frame = theory.depth_curves(settings, sorted({settings["eta"], *settings["eta_sweep"]}))
    elif args.kind == "stationary":
        frame = theory.stationary_curves(settings)
    else:
        from . import data

        if args.test is None or args.spec is None:
            raise SystemExit("icl theory test-prompts needs --test and --spec")
        frame = theory.on_test_prompts(data.load(args.test)["sets"], args.spec, settings)
    metrics.write(frame, args.out, {"theory": settings, "spec": args.spec})


def cmd_data(args):
    from . import data

    if args.kind == "train":
        data.save(data.training_set(args.spec), args.out)
    else:
        data.save(data.test_sets(args.spec, args.x_shifts), args.out)


def cmd_baselines(args):
    from . import baselines

    baselines.evaluate(args.test, args.spec, args.out)


def _runs(specs):
    from .runs import Run

    return [Run.of(spec) for spec in specs]


def cmd_train(args):
    from .training import train_group

    train_group(_runs(args.runs), args.execution, args.manifest, progress=not args.quiet)


def cmd_evaluate(args):
    from .evaluation import evaluate_group

    evaluate_group(_runs(args.runs), args.x_shifts, args.execution, args.manifest)


def cmd_aggregate(args):
    from . import metrics, store

    # A group's manifest stands for the stored files it lists: its runs' metrics and training curves.
    inputs = [Path(file) for path in args.inputs for file in (store.manifest_files(path) if path.suffix == ".json" else [path])]
    frame = metrics.read(inputs)
    specs = [metrics.config_of(path) for path in inputs if path.name.startswith("metrics-")]
    metrics.write(frame, args.out, {"sweep": args.sweep, "specs": specs, "evaluate": args.evaluate})


def cmd_benchmarks(args):
    from . import benchmarks

    benchmarks.write(args.records, args.out)


def cmd_ginc(args):
    from threadpoolctl import threadpool_limits

    from . import ginc

    with threadpool_limits(1):  # small matrices: BLAS threads only contend
        ginc.save(ginc.corpus_file(args.spec), args.corpus)
        ginc.save(ginc.prompts_file(args.spec), args.prompts)


def _lm_group(record):
    from .lm_plan import Group

    return Group(name=record["name"], spec=record["spec"])


def cmd_train_lm(args):
    from . import lm_training

    lm_training.train(_lm_group(args.group), args.corpus, args.execution, progress=not args.quiet)


def cmd_evaluate_lm(args):
    from . import lm_training

    lm_training.evaluate(_lm_group(args.group), args.prompts, args.execution)


def cmd_aggregate_lm(args):
    import pandas as pd

    from . import lm_training, metrics

    frame = pd.concat([metrics.read(args.inputs), lm_training.references(args.prompts)], ignore_index=True)
    metrics.write(frame, args.out, {"lm": args.lm}, schema=metrics.LM_SCHEMA)


def _frames(named_paths):
    from . import metrics

    frames = {name: metrics.read([path]) for name, path in named_paths}
    configs = {name: metrics.config_of(path) for name, path in named_paths}
    return frames, configs


def cmd_figure(args):
    from . import figures

    frames, configs = _frames(args.metrics)
    figures.draw(args.name, frames, configs, args.out)


def cmd_table(args):
    from . import tables

    frames, configs = _frames(args.metrics)
    tables.write(args.name, frames, configs, args.out)


def _add_job_options(command) -> None:
    """The options of a command that trains or evaluates on a device: its execution settings and the progress bar."""
    command.add_argument(
        "--execution", type=_json, default=os.environ.get(EXECUTION_VARIABLE),
        help=f"the config's execution section, as JSON (default: ${EXECUTION_VARIABLE}, which the workflow sets)",
    )
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="icl", description=__doc__)
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", required=True)

    theory = sub.add_parser("theory", help="constructed-LSA curves (Sec. 5.1)")
    theory.add_argument("kind", choices=["depth", "stationary", "test-prompts"])
    theory.add_argument("--theory", type=_json, required=True, help="the config's theory section, as JSON")
    theory.add_argument("--test", type=Path, help="test-prompts: a run's test file")
    theory.add_argument("--spec", type=_json, help="test-prompts: the test file's spec, as JSON")
    theory.add_argument("--out", type=Path, required=True)
    theory.set_defaults(func=cmd_theory)

    data = sub.add_parser("data", help="write a training or test dataset file")
    data.add_argument("kind", choices=["train", "test"])
    data.add_argument("--spec", type=_json, required=True, help="a run's resolved config, as JSON")
    data.add_argument("--x-shifts", type=float, nargs="*", default=[0.0])
    data.add_argument("--out", type=Path, required=True)
    data.set_defaults(func=cmd_data)

    base = sub.add_parser("baselines", help="score the classical baselines on a test file")
    base.add_argument("--spec", type=_json, required=True, help="the test set's spec, as JSON")
    base.add_argument("--test", type=Path, required=True)
    base.add_argument("--out", type=Path, required=True)
    base.set_defaults(func=cmd_baselines)

    for name, func, help_text in (
        ("train", cmd_train, "train the runs of a group that are not stored yet"),
        ("evaluate", cmd_evaluate, "evaluate the runs of a group that have no metrics yet"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--runs", type=_json, required=True, help="the group's runs: a list of resolved run configs")
        command.add_argument("--manifest", type=Path, required=True, help="the group's manifest to write (icl.store)")
        if name == "evaluate":
            command.add_argument("--x-shifts", type=_json, required=True, help="evaluate.x_shifts, as JSON")
        _add_job_options(command)
        command.set_defaults(func=func)

    ginc = sub.add_parser("ginc", help="write the GINC corpus and its prompt sets")
    ginc.add_argument("--spec", type=_json, required=True, help="the corpus and prompt settings, as JSON (icl.lm_plan.ginc_spec)")
    ginc.add_argument("--corpus", type=Path, required=True)
    ginc.add_argument("--prompts", type=Path, required=True)
    ginc.set_defaults(func=cmd_ginc)

    for name, func, data_option, help_text in (
        ("train-lm", cmd_train_lm, "--corpus", "pretrain a group of language models"),
        ("evaluate-lm", cmd_evaluate_lm, "--prompts", "few-shot accuracy of a group of language models"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--group", type=_json, required=True, help="{name, spec} of the group (icl.lm_plan.Group)")
        command.add_argument(data_option, type=Path, required=True)
        _add_job_options(command)
        command.set_defaults(func=func)

    aggregate_lm = sub.add_parser("aggregate-lm", help="the language models' metrics and the references in one table")
    aggregate_lm.add_argument("inputs", type=Path, nargs="+")
    aggregate_lm.add_argument("--prompts", type=Path, required=True)
    aggregate_lm.add_argument("--lm", type=_json, required=True, help="the config's lm section, as JSON")
    aggregate_lm.add_argument("--out", type=Path, required=True)
    aggregate_lm.set_defaults(func=cmd_aggregate_lm)

    aggregate = sub.add_parser("aggregate", help="concatenate run metrics into one table")
    aggregate.add_argument("inputs", type=Path, nargs="+", help="metrics files, and group manifests that list them")
    aggregate.add_argument("--sweep", required=True)
    aggregate.add_argument("--evaluate", type=_json, required=True, help="the config's evaluate section, as JSON")
    aggregate.add_argument("--out", type=Path, required=True)
    aggregate.set_defaults(func=cmd_aggregate)

    bench = sub.add_parser("benchmarks", help="every job's runtime and memory in one table")
    bench.add_argument("records", type=Path, nargs="+", help="the jobs' benchmark TSV files")
    bench.add_argument("--out", type=Path, required=True, help="the summary CSV")
    bench.set_defaults(func=cmd_benchmarks)

    for name, func in (("figure", cmd_figure), ("table", cmd_table)):
        command = sub.add_parser(name, help=f"draw one {name} artifact")
        command.add_argument("name")
        command.add_argument("--metrics", type=_named_path, nargs="+", required=True, help="TABLE=PATH of each metrics table it reads")
        command.add_argument("--out", type=Path, required=True, help="the .pdf (figure) or .csv (table); the .png or .md goes beside it")
        command.set_defaults(func=func)
    return p


def main(argv=None, own_process: bool = False):
    """Run one command. own_process: this process runs nothing else (python -m icl, as every job
    does), so the objects of its imports, which live as long as it does, are loaded with the garbage
    collector off and then left out of its later collections (gc.freeze)."""
    if own_process:
        gc.disable()
    command_line = parser()
    args = command_line.parse_args(argv)
    if "execution" in vars(args) and args.execution is None:  # a command with the job options, run by hand
        command_line.error(f"{args.command} needs --execution or the environment variable {EXECUTION_VARIABLE}")
    fault_drill()
    if args.command in TORCH_COMMANDS:
        import torch

        if args.command in TENSOR_COMMANDS:
            # Small tensor work: one thread is fastest, and extra threads stall when the cores are busy.
            torch.set_num_threads(1)
    if own_process:
        gc.freeze()
        gc.enable()
    args.func(args)


if __name__ == "__main__":
    main(own_process=True)
