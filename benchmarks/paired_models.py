"""Paired speed of the model code: icl/models.py at a git revision against the working tree's, or the
working tree's without and with its fused CPU kernels (icl/cpu_kernels.py).

    python benchmarks/paired_models.py HEAD~1                  # SL and UL, the default config's group
    python benchmarks/paired_models.py HEAD~1 --layers UL --blocks 16
    python benchmarks/paired_models.py --cpu-kernels           # execution.cpu_kernels off against auto

A machine whose speed drifts by more than a change gains (a shared or virtual one) cannot show the
gain by timing one version after the other. So one process builds the same group of models with
each version, as a training job does (benchmarks/train_throughput.py's settings), and alternates
blocks of training steps between them, in the order ABBA...; it prints the model-steps per second
of CPU time of each and their ratio. The revision's models.py must have the interface that the
working tree's training code calls; both versions use the working tree's CPU kernels.
"""

import argparse
import subprocess
import tempfile
import time
import types
from pathlib import Path

import torch

from icl import cpu_kernels, data, models, runs, training
from train_throughput import REPO, base_spec, load_config, make_members


def models_at(revision: str) -> types.ModuleType:
    """icl/models.py as it was at `revision`, as a module of the icl package (its relative imports
    resolve to the working tree's modules)."""
    path = "workflow/icl/models.py"
    source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(f"icl.models_at_{revision}")
    module.__package__ = "icl"
    exec(compile(source, f"{revision}:{path}", "exec"), module.__dict__)
    return module


def trainer_with(model_code: types.ModuleType, members, execution) -> training.GroupTrainer:
    """A trainer whose group is built by `model_code` (build and initialise are looked up when it is made)."""
    current = training.models
    training.models = model_code
    try:
        return training.GroupTrainer(members, execution)
    finally:
        training.models = current


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision", nargs="?", help="the git revision whose icl/models.py to compare with the working tree's")
    parser.add_argument("--cpu-kernels", action="store_true", help="instead, the working tree without and with its CPU kernels")
    parser.add_argument("--layers", choices=["SL", "UL", "both"], default="both")
    parser.add_argument("--blocks", type=int, default=12, help="timed blocks of each version")
    parser.add_argument("--steps", type=int, default=10, help="steps per block")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs.keep_freed_memory()  # as a training job does

    config = load_config(paper=False)
    execution = config["execution"] | {"device": "cpu", "compile": "off", "log_every": 10**9}
    k = config["execution"]["group_size"]
    if args.cpu_kernels:
        versions = {"PyTorch code": (models, "off"), "CPU kernels": (models, "auto")}  # name: (model code, kernels)
    elif args.revision:
        versions = {args.revision: (models_at(args.revision), "auto"), "working tree": (models, "auto")}
    else:
        parser.error("give a revision to compare the working tree with, or --cpu-kernels")
    baseline, candidate = versions
    print(f"{k} models of the default config's architecture, eager, {args.threads} thread(s); "
          f"{args.blocks} blocks of {args.steps} steps of each version, alternating")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for layers in (["SL", "UL"] if args.layers == "both" else [args.layers]):
            spec = base_spec(config, layers == "SL", "fp32")
            dataset = tmp / f"{layers}.pt"
            data.save(data.training_set(spec), dataset)
            members = make_members(spec, k, tmp / layers, dataset)
            trainers = {name: trainer_with(code, members, execution) for name, (code, _) in versions.items()}

            def train(name):
                cpu_kernels.set_mode(versions[name][1])
                for _ in range(args.steps):
                    trainers[name].train_step()

            for name in trainers:  # warm-up
                train(name)
            seconds = dict.fromkeys(trainers, 0.0)
            order = list(trainers)
            for block in range(args.blocks):
                for name in order if block % 2 == 0 else order[::-1]:
                    start = time.process_time()
                    train(name)
                    seconds[name] += time.process_time() - start
            rates = {name: k * args.steps * args.blocks / s for name, s in seconds.items()}
            for name, rate in rates.items():
                print(f"{layers} {name:>14}: {rate:7.1f} model-steps per CPU-s")
            print(f"{layers} ratio, {candidate} / {baseline}: {rates[candidate] / rates[baseline]:.3f}")


if __name__ == "__main__":
    main()
