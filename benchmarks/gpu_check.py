"""GPU readiness check at the paper's architecture: prints a summary and writes it to docs/performance.md.

    bash benchmarks/gpu_check.sh                        # on one H100 or H200, under 8 minutes
    bash benchmarks/gpu_check.sh --device cpu --quick   # tiny sizes on a CPU, about a minute

Sections, each run against its own wall-time budget so that the whole cannot overrun (a
measurement still going at its phase's deadline is stopped and reported as over budget):
1. model-steps/s against the group size K, for SL and UL, in fp32, tf32 and bf16, eager and
   compiled (torch.compile, and reduce-overhead, which adds CUDA graphs), against the released code;
2. a torch.profiler summary of the fastest setting of each of SL and UL;
3. peak device memory per model (the model's estimate beside it; measured only on a GPU);
4. Table 1 at the paper's architecture (lr, nlr, mc x prefix, causal x SL, UL, one seed), trained
   for as many steps as fit the budget, with its test errors beside its training throughput.
"""

import argparse
import contextlib
import datetime
import math
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch._dynamo

import train_throughput as throughput
from icl import config as icl_config
from icl import data, evaluation, shapes, training
from icl.runs import Run, stable_hash
from icl.files import write_text
from icl.paper import TABLE1

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "tf32", "bf16")
# The paper scale's goal on one H200, in model-steps/s (README).
GOAL = {"SL": 2500, "UL": 1300}

# Wall-time budgets in seconds: the whole check, and each phase's share of it.
BUDGETS = {
    "full": {"eager": 120, "compiled": 150, "profile": 40, "table1": 110},
    "quick": {"eager": 36, "compiled": 50, "profile": 10, "table1": 30},
}


class OverBudget(Exception):
    """A measurement ran past its phase's deadline."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise OverBudget in the block once `seconds` of wall time have passed."""
    if seconds <= 0:
        raise OverBudget()

    def expire(signum, frame):
        raise OverBudget()

    previous = signal.signal(signal.SIGALRM, expire)
    # Again every second after the deadline: an exception raised inside a finaliser is ignored.
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def over_budget(error: BaseException) -> bool:
    """Whether an error is OverBudget, or one that a compiler raised while handling it."""
    while error is not None:
        if isinstance(error, OverBudget) or str(error).startswith("OverBudget"):
            return True
        error = error.__cause__ or error.__context__
    return False


def describe(error: BaseException, budget: float) -> str:
    if over_budget(error):
        return f"over budget ({budget:.0f} s)"
    first = str(error).splitlines()[0][:80] if str(error) else ""
    return f"{type(error).__name__}: {first}"


class Phase:
    """A phase's deadline: what is left of its budget."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def measure(trainer, min_seconds: float, warmup: int = 2) -> dict:
    """Model-steps/s of a trainer: `warmup` steps (compilation happens here), then the best of two
    timed blocks of at least min_seconds and 3 steps each."""
    device, k = trainer.device, len(trainer.members)
    training.set_precision(trainer.spec["precision"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(warmup):
        trainer.train_step()
    throughput.synchronize(device)
    first = time.perf_counter() - start
    best = math.inf
    for _ in range(2):
        steps, start = 0, time.perf_counter()
        while steps < 3 or time.perf_counter() - start < min_seconds:
            trainer.train_step()
            steps += 1
            if steps % 5 == 0:
                throughput.synchronize(device)
        throughput.synchronize(device)
        best = min(best, (time.perf_counter() - start) / steps)
    memory = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else math.nan
    return {"rate": k / best, "seconds": best, "warmup": first, "memory": memory}


class Check:
    def __init__(self, args):
        self.args, self.quick = args, args.quick
        self.device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.budget = BUDGETS["quick" if self.quick else "full"]
        self.config = throughput.load_config(paper=not self.quick)
        if self.quick:  # tiny: the default architecture, fewer layers and a small batch
            for key, value in {"n_layers": 2, "width": 16, "ffn_width": 32}.items():
                self.config["model"][key] = value
            self.config["train"]["batch_size"] = 8
        # On a CPU one thread: small models gain nothing from more, and they stall when the cores are shared.
        threads = 1 if self.device.type == "cpu" else 0
        self.execution = self.config["execution"] | {"device": self.device.type, "log_every": 10**9, "threads": threads}
        if threads:
            torch.set_num_threads(threads)
        self.tmp = Path(tempfile.mkdtemp(prefix="gpu_check-"))
        self.rows = []  # one per measurement
        self.datasets = {}

    # --- 1. throughput ---

    def ks(self, spec) -> list:
        if self.quick:
            return [1, 4]
        if self.device.type == "cuda":
            memory = torch.cuda.get_device_properties(self.device).total_memory
        else:
            memory = 8e9
        per_model = shapes.training_bytes(shapes.ModelConfig.from_spec(spec), spec["batch_size"])
        return [k for k in (1, 4, 16, 32, 64, 128, 256) if k * per_model < 0.9 * memory]  # a rough estimate: OOM ends a sweep too

    def dataset(self, spec) -> Path:
        path = self.tmp / f"train-{stable_hash(Run.of(spec).train_data_spec())}.pt"
        if path not in self.datasets:
            data.save(data.training_set(spec), path)
            self.datasets[path] = True
        return path

    def run_one(self, layers, precision, compile_mode, k, phase) -> dict:
        spec = throughput.base_spec(self.config, layers == "SL", precision)
        row = {"layers": layers, "precision": precision, "compile": compile_mode, "k": k}
        execution = self.execution | {"compile": compile_mode}
        cap = phase.left() if compile_mode == "off" else min(phase.left(), 120 if not self.quick else 40)
        dataset = self.dataset(spec)  # outside the deadline: shared by the settings after this one
        try:
            if compile_mode != "off":
                torch._dynamo.reset()  # each trainer compiles afresh; no recompile limit carries over
            with deadline(cap):
                trainer = training.GroupTrainer(throughput.make_members(spec, k, self.tmp / "runs", dataset), execution)
                # CUDA graphs are recorded on the second or third call, so compiled runs warm up for 3 steps.
                row |= measure(trainer, min_seconds=0.2 if self.quick else 0.5, warmup=2 if compile_mode == "off" else 3)
                row["trainer"] = trainer
        except torch.OutOfMemoryError:
            row["error"] = "out of memory"
        except Exception as error:  # one setting failing must not lose the others' numbers
            if not over_budget(error):
                traceback.print_exc()
            row["error"] = describe(error, cap)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.rows.append(row)
        self.report_row(row)
        return row

    def report_row(self, row):
        result = row.get("error") or (
            f"{row['rate']:.1f} model-steps/s, {1000 * row['seconds']:.1f} ms/step, first steps {row['warmup']:.1f} s"
            + (f", {row['memory'] / row['k'] / 1e6:.0f} MB/model" if row["memory"] == row["memory"] else "")
        )
        print(f"  {row['layers']} {row['precision']:>4} compile={row['compile']:<15} K={row['k']:<5} {result}", flush=True)
        row.pop("trainer", None)  # free its memory before the next one

    def best(self, layers, **match) -> dict | None:
        rows = [r for r in self.rows if r["layers"] == layers and "rate" in r and all(r[k] == v for k, v in match.items())]
        return max(rows, key=lambda r: r["rate"]) if rows else None

    def throughput(self):
        print("1. throughput: eager", flush=True)
        for precision in ("bf16", "fp32", "tf32"):  # most promising first
            for layers in ("SL", "UL"):
                phase = Phase(self.budget["eager"] / 6)  # each its share, so every setting gets numbers
                spec = throughput.base_spec(self.config, layers == "SL", precision)
                previous = 0.0
                for k in self.ks(spec):
                    row = self.run_one(layers, precision, "off", k, phase)
                    if "rate" not in row or row["rate"] < 1.05 * previous:
                        break  # out of memory, over budget, or saturated
                    previous = row["rate"]
        print("1. throughput: compiled, at each precision's best eager K", flush=True)
        phase = Phase(self.budget["compiled"])
        modes = ["default"] if self.device.type == "cpu" else ["default", "reduce-overhead"]
        order = ("fp32",) if self.quick else ("bf16", "tf32", "fp32")
        for precision in order:
            for mode in modes:
                for layers in ("SL", "UL"):
                    eager = self.best(layers, precision=precision, compile="off")
                    if eager is not None and phase.left() > 0:
                        self.run_one(layers, precision, mode, eager["k"], phase)

    # --- 2. profile ---

    def profile(self):
        print("2. profile of the fastest settings", flush=True)
        phase = Phase(self.budget["profile"])
        self.profiles = {}
        for layers in ("SL", "UL"):
            # The fastest setting; if recompiling it does not fit the budget, the fastest eager one.
            candidates = [self.best(layers), self.best(layers, compile="off")]
            for best in [c for i, c in enumerate(candidates) if c is not None and c not in candidates[:i]]:
                setting = f"{layers}, {best['precision']}, compile {best['compile']}, K = {best['k']}, 3 steps"
                table = self.profile_one(best, phase.left() / (2 if layers == "SL" else 1))
                print(f"  {setting}\n{table}", flush=True)
                if not table.startswith("over budget"):
                    self.profiles[setting] = table
                    break

    def profile_one(self, best: dict, seconds: float) -> str:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as profiler

        spec = throughput.base_spec(self.config, best["layers"] == "SL", best["precision"])
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
        sort = "self_cuda_time_total" if self.device.type == "cuda" else "self_cpu_time_total"
        try:
            torch._dynamo.reset()
            with deadline(seconds):
                execution = self.execution | {"compile": best["compile"]}
                trainer = training.GroupTrainer(throughput.make_members(spec, best["k"], self.tmp / "runs", self.dataset(spec)), execution)
                training.set_precision(best["precision"])
                for _ in range(3):
                    trainer.train_step()
                throughput.synchronize(self.device)
                with profiler(activities=activities) as prof:
                    for _ in range(3):
                        trainer.train_step()
                    throughput.synchronize(self.device)
            return prof.key_averages().table(sort_by=sort, row_limit=12, max_name_column_width=60)
        except Exception as error:
            if not over_budget(error):
                traceback.print_exc()
            return describe(error, seconds)
        finally:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    # --- 4. Table 1 ---

    def table1(self):
        """Train Table 1's 12 runs (one seed) for as many steps as fit, in four groups (SL and UL, each
        lr and nlr together and mc alone), at the fastest eager precision, and evaluate them."""
        print("4. Table 1 correctness run", flush=True)
        phase = Phase(self.budget["table1"])
        self.table1_rows, self.table1_setting = [], None
        eager = [r for r in self.rows if r["compile"] == "off" and "rate" in r]
        if not eager:
            return
        precision = (self.best("UL", compile="off") or self.best("SL", compile="off"))["precision"]
        self.table1_setting = precision
        x_shifts = [0.0]
        cwd = os.getcwd()
        os.chdir(self.tmp)  # the runs' paths (results/...) are relative
        groups = [(shared, tasks_) for shared in (True, False) for tasks_ in (("lr", "nlr"), ("mc",))]
        for index, (shared, group_tasks) in enumerate(groups):
            layers = "SL" if shared else "UL"
            share = phase.left() / (len(groups) - index)
            # Steps from the measured rate at the smallest K, after a share for data, compilation and evaluation.
            measured = min((r for r in eager if r["layers"] == layers), key=lambda r: (r["precision"] != precision, r["k"]), default=None)
            step_seconds = measured["seconds"] * (1.2 if not self.quick else 2.0) if measured else math.inf
            steps = max(10, min(100_000, int(0.6 * share / step_seconds)))
            specs = [
                {k: v for section in icl_config.RUN_SECTIONS for k, v in self.config[section].items()}
                | {"task": task, "mask": mask, "shared": shared, "l2": shared, "permute": False, "seed": 0,
                   "steps": steps, "precision": precision, "train_batches": min(steps, self.config["data"]["train_batches"])}
                for task in group_tasks for mask in ("prefix", "causal")
            ]
            runs = [Run.of(s) for s in specs]
            try:
                with deadline(share):
                    for run in runs:
                        if not run.train_data.exists():
                            data.save(data.training_set(run.train_data_spec()), run.train_data)
                            data.save(data.test_sets(run.test_data_spec(), x_shifts), run.test_data(x_shifts))
                    started = time.perf_counter()
                    trainer = training.train_group(runs, self.execution | {"compile": "off"}, progress=False)[0]
                    rate = len(runs) * steps / (time.perf_counter() - started)
                    evaluation.evaluate_group(runs, x_shifts, self.execution)
                for run in runs:
                    self.table1_rows.append(self.table1_row(run, steps, rate, trainer, x_shifts))
            except Exception as error:
                if not over_budget(error):
                    traceback.print_exc()
                for run in runs:
                    self.table1_rows.append({"row": row_name(run.spec), "task": run.spec["task"], "steps": steps, "error": describe(error, share)})
            for row in self.table1_rows[-len(runs):]:
                print(f"  {format_table1_row(row)}", flush=True)
        os.chdir(cwd)

    def table1_row(self, run, steps, rate, trainer, x_shifts) -> dict:
        import pandas as pd

        frame = pd.read_parquet(run.metrics(x_shifts))
        metric = "query_error_pct" if run.spec["task"] == "mc" else "query_mse"
        chosen = frame[(frame["metric"] == metric) & (frame["n_context"] == run.spec["n_context"]) & (frame["x_shift"] == 0.0)]
        return {"row": row_name(run.spec), "task": run.spec["task"], "steps": steps, "metric": metric,
                "value": float(chosen["value"].iloc[0]), "rate": rate, "paper": TABLE1[row_name(run.spec)][run.spec["task"]]}

    # --- summary ---

    def summary(self, seconds: float) -> str:
        device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        spec = throughput.base_spec(self.config, True, "fp32")
        config = shapes.ModelConfig.from_spec(spec)
        flops = {layers: shapes.run_training_flops(throughput.base_spec(self.config, layers == "SL", "fp32")) for layers in ("SL", "UL")}
        lines = [
            "# Performance: GPU readiness check",
            "",
            f"Written by `bash benchmarks/gpu_check.sh{' --device cpu --quick' if self.quick else ''}` on {device}, torch {torch.__version__}, "
            f"{datetime.date.today().isoformat()}, in {seconds:.0f} s. "
            + ("Quick mode: tiny sizes on a CPU, a test of the check itself, not a measurement of the paper's scale. " if self.quick else "")
            + f"Architecture: {config.n_layers} layers, width {config.width}, {config.heads} heads, FFN {config.ffn_width}, "
            f"{config.variant} variant, {config.attention} logit; batch {spec['batch_size']}, {config.n_positions} positions, "
            f"{flops['SL'] / 1e9:.3g} GFLOP per model-step for SL (with the L2 term, as in Table 1) and {flops['UL'] / 1e9:.3g} for UL "
            "(without it, the last layer computes only the queries), in matmuls.",
            "",
            "## Throughput",
            "",
            f"Model-steps/s; the released code does {throughput.RELEASED_H200['SL']} SL and {throughput.RELEASED_H200['UL']} UL on an H200 "
            f"and the goal is {GOAL['SL']} SL and {GOAL['UL']} UL. TFLOP/s counts matmul FLOPs. 'first steps' is the time of the "
            "first two steps, compilation included.",
            "",
            "| layers | precision | compile | K | model-steps/s | x released | TFLOP/s | ms/step | first steps (s) | MB/model |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            if "rate" in r:
                memory = f"{r['memory'] / r['k'] / 1e6:.0f}" if r["memory"] == r["memory"] else "-"
                lines.append(
                    f"| {r['layers']} | {r['precision']} | {r['compile']} | {r['k']} | {r['rate']:.1f} | "
                    f"{r['rate'] / throughput.RELEASED_H200[r['layers']]:.2f} | {r['rate'] * flops[r['layers']] / 1e12:.3f} | "
                    f"{1000 * r['seconds']:.1f} | {r['warmup']:.1f} | {memory} |"
                )
            else:
                lines.append(f"| {r['layers']} | {r['precision']} | {r['compile']} | {r['k']} | {r['error']} | | | | | |")
        best = {layers: self.best(layers) for layers in ("SL", "UL")}
        lines += ["", "Fastest: " + "; ".join(
            f"{layers} {b['rate']:.1f} model-steps/s ({b['precision']}, compile {b['compile']}, K = {b['k']}, "
            f"{b['rate'] / GOAL[layers]:.2f} of the goal)" for layers, b in best.items() if b
        ) + "."]
        lines += ["", "## Profile of the fastest settings", ""]
        for setting, table in self.profiles.items():
            lines += [f"{setting}:", "", "```", table.rstrip(), "```", ""]
        lines += ["## Peak memory per model", ""]
        lines += [
            "Measured: the peak device memory of a training step over K (GPU only). Estimate: icl.shapes.training_bytes "
            "(weights, gradients, Adam moments and the activations autograd keeps, in float32).",
            "",
            "| layers | precision | compile | K | measured MB/model | estimate MB/model |",
            "|---|---|---|---|---|---|",
        ]
        for layers in ("SL", "UL"):
            estimate = shapes.training_bytes(shapes.ModelConfig.from_spec(throughput.base_spec(self.config, layers == "SL", "fp32")), spec["batch_size"])
            for r in self.rows:
                if r["layers"] == layers and "rate" in r and r["k"] == max(x["k"] for x in self.rows if x["layers"] == layers and "rate" in x):
                    measured = f"{r['memory'] / r['k'] / 1e6:.1f}" if r["memory"] == r["memory"] else "- (CPU)"
                    lines.append(f"| {layers} | {r['precision']} | {r['compile']} | {r['k']} | {measured} | {estimate / 1e6:.1f} |")
        lines += [
            "",
            "## Table 1 correctness run",
            "",
            f"One seed, SL with L2 and UL without, {self.table1_setting or '-'} eager, trained for as many steps as fit the "
            "budget (the paper trains 100,000), then evaluated on fresh prompts with the full context (no x shift). "
            "Test query MSE (lr, nlr) or error % (mc); the paper's Table 1 beside it.",
            "",
            "| row | task | steps | test error | paper | training model-steps/s |",
            "|---|---|---|---|---|---|",
        ]
        for r in getattr(self, "table1_rows", []):
            if "value" in r:
                lines.append(f"| {r['row']} | {r['task']} | {r['steps']} | {r['value']:.4g} | {r['paper']:.3g} | {r['rate']:.1f} |")
            else:
                lines.append(f"| {r['row']} | {r['task']} | {r['steps']} | {r['error']} | | |")
        return "\n".join(lines) + "\n"


def row_name(spec: dict) -> str:
    return f"{'PrefixLM' if spec['mask'] == 'prefix' else 'CausalLM'}-{'SL' if spec['shared'] else 'UL'}"


def format_table1_row(row: dict) -> str:
    if "value" in row:
        return f"{row['row']} {row['task']}: {row['steps']} steps, test {row['metric']} {row['value']:.4g} (paper {row['paper']:.3g}), {row['rate']:.1f} model-steps/s"
    return f"{row['row']} {row['task']}: {row['error']}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and budgets (about a minute on a CPU)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md", help="where the summary goes")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device (use --device cpu --quick to test the check)")
    if args.device != "cpu":
        torch.backends.cuda.matmul.allow_tf32 = False
    started = time.perf_counter()
    check = Check(args)
    print(f"gpu check on {check.device}, {'quick' if args.quick else 'full'}, budgets (s): {check.budget}", flush=True)
    check.throughput()
    check.profile()
    check.table1()
    text = check.summary(time.perf_counter() - started)
    write_text(args.out, text)
    print("\n" + text + f"\nwritten to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
