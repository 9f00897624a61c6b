"""Training throughput of run groups: model-steps per second, per CPU core, against the released code.

    python benchmarks/train_throughput.py --threads 1              # the default config, as its jobs train
    python benchmarks/train_throughput.py --threads 1 --baseline   # released-style: one model, eager
    python benchmarks/train_throughput.py --threads 1 --cpu-kernels off  # without the fused CPU kernels
    python benchmarks/train_throughput.py --paper --ks 32 128 512 --precision bf16 --compile default

By default it trains groups of execution.group_size models of the default config's architecture
(config.yaml), with its compile and CPU-kernel settings, as a training job does (alternating prefix and causal
masks, on a small synthetic training set; SL with the L2 term and UL without, as in Table 1), and prints for SL and UL the model-steps/s (the best of
--repeats timed blocks of --steps steps after --warmup steps), per core on a CPU, their ratio to the
released code, the matmul GFLOP/s beside this device's own fp32 matmul peak (one large matmul,
measured here), and on a GPU the peak memory per model; then the device-hours of the config's grid. `--baseline` times the released code's way
of training: one model per process, eager, with PyTorch's own ops (no fused CPU kernels). `--paper` uses the paper's architecture (configs/paper.yaml).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import yaml

from icl import config as icl_config
from icl import cpu_kernels, data, plan, runs, shapes
from icl.training import GroupTrainer, set_precision

REPO = Path(__file__).resolve().parents[1]
# The released JAX/Flax code (google-research/causallm_icl), one jit-compiled model per process, at
# the default config's architecture (with its FFN 128 wide, ours 64), measured on one core of the
# 2-core CPU machine the README's numbers come from.
RELEASED_PER_CORE = {"SL": 186.0, "UL": 169.0}
# The released code on an H200 at the paper's architecture, and the goal there (README).
RELEASED_H200 = {"SL": 50.8, "UL": 26.5}


def load_config(paper: bool) -> dict:
    """config.yaml, with configs/paper.yaml merged over it for the paper's scale."""
    merged = yaml.safe_load((REPO / "config.yaml").read_text())
    if paper:
        for key, value in yaml.safe_load((REPO / "configs" / "paper.yaml").read_text()).items():
            merged[key] = merged.get(key, {}) | value if isinstance(value, dict) and key != "sweeps" else value
    return icl_config.validate(merged)


def base_spec(config: dict, shared: bool, precision: str) -> dict:
    """A run as Table 1 trains it: SL with the L2 term (its last layer computes every position), UL
    without (its last layer computes only the queries)."""
    spec = {k: v for section in icl_config.RUN_SECTIONS for k, v in config[section].items()}
    return spec | {"task": "lr", "shared": shared, "l2": shared, "precision": precision, "train_batches": 8, "seed": 0}


def make_members(spec, k, directory, dataset):
    """K runs that alternate prefix and causal, all trained on the one dataset file (linked to where each looks)."""
    members = []
    for i in range(k):
        run = runs.Run.of(spec | {"seed": i, "mask": ("prefix", "causal")[i % 2]}, root=directory)
        if not run.train_data.exists():
            run.train_data.parent.mkdir(parents=True, exist_ok=True)
            os.link(dataset, run.train_data)
        members.append(run)
    return members


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, precision: str = "fp32", size: int = 2048) -> float:
    """FLOP/s of one large square matmul in `precision`, the best of a few: the device's own roofline
    (one thread's, on a CPU set to one thread)."""
    set_precision(precision)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    size = size if device.type == "cpu" else 8192
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    best = float("inf")
    for _ in range(4):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(1 if device.type == "cpu" else 10):
            a @ b
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / (1 if device.type == "cpu" else 10))
    return 2 * size**3 / best


def measure(trainer: GroupTrainer, steps: int, warmup: int, repeats: int) -> dict:
    """Model-steps/s (best of `repeats` blocks of `steps` steps), the same per second of this process's
    CPU time (which other processes on a shared machine disturb less than wall time), seconds per
    step, the seconds until the first step was done (compilation included) and the peak device
    memory (nan on a CPU)."""
    device, k = trainer.device, len(trainer.members)
    set_precision(trainer.spec["precision"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(warmup):
        trainer.train_step()
    synchronize(device)
    first = time.perf_counter() - start
    seconds = cpu_seconds = float("inf")
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(steps):
            trainer.train_step()
        synchronize(device)
        seconds = min(seconds, (time.perf_counter() - start) / steps)
        cpu_seconds = min(cpu_seconds, (time.process_time() - cpu_start) / steps)
    memory = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else float("nan")
    return {"rate": k / seconds, "cpu_rate": k / cpu_seconds, "seconds": seconds, "warmup_seconds": first, "memory": memory}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper", action="store_true", help="the paper's architecture (configs/paper.yaml)")
    parser.add_argument("--baseline", action="store_true", help="released-style: one model (K = 1), eager")
    parser.add_argument("--ks", type=int, nargs="+", help="group sizes (default: the config's execution.group_size)")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks; the best counts")
    parser.add_argument("--warmup", type=int, default=5, help="steps before timing (compilation happens here)")
    parser.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    parser.add_argument("--compile", choices=["off", "default", "reduce-overhead", "max-autotune"],
                        help="default: the config's execution.compile")
    parser.add_argument("--cpu-kernels", choices=cpu_kernels.MODES, help="default: the config's execution.cpu_kernels")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (per-core rates divide by it)")
    parser.add_argument("--layers", choices=["SL", "UL", "both"], default="both")
    args = parser.parse_args()

    config = load_config(args.paper)
    compile_mode = "off" if args.baseline else (args.compile or config["execution"]["compile"])
    ks = [1] if args.baseline else (args.ks or [config["execution"]["group_size"]])
    kernels = "off" if args.baseline else (args.cpu_kernels or config["execution"]["cpu_kernels"])
    runs.set_cpu_execution({"threads": args.threads, "cpu_kernels": kernels})  # as a training job sets its process
    execution = config["execution"] | {"device": args.device, "compile": compile_mode, "log_every": 10**9}
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    peak = matmul_peak(device)
    on_cpu = device.type == "cpu"
    per = f"/core ({args.threads} thread{'s' * (args.threads > 1)})" if on_cpu else ""
    if on_cpu:
        print("per CPU-s: model-steps per second of this process's CPU time, per thread")
    print(f"{'paper' if args.paper else 'default'} architecture on {device}, precision {args.precision}, compile {compile_mode}"
          + (f", CPU kernels {kernels}" if device.type == "cpu" else "")
          + (" (released-style baseline: one model per process, eager)" if args.baseline else ""))
    print(f"fp32 matmul peak of this device: {peak / 1e9 / (args.threads if on_cpu else 1):.1f} GFLOP/s{per}, one {2048 if on_cpu else 8192}^2 matmul")

    best = {}  # layers -> the best model-steps/s of the device (all threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for layers in (["SL", "UL"] if args.layers == "both" else [args.layers]):
            spec = base_spec(config, layers == "SL", args.precision)
            dataset = tmp / f"{layers}.pt"
            data.save(data.training_set(spec), dataset)
            model_config = shapes.ModelConfig.from_spec(spec)
            flops = shapes.run_training_flops(spec)
            print(f"\n{layers}: {runs.architecture(spec)}, batch {spec['batch_size']}, {model_config.n_positions} positions, "
                  f"{flops / 1e9:.3f} GFLOP per model-step (matmuls)")
            print(f"{'K':>6} {'model-steps/s' + per:>24} {'x released':>11} {'GFLOP/s' + per:>18} {'% of peak':>10} "
                  f"{'ms/step':>9} {'warm-up s':>10} {'MB/model':>9} {'per CPU-s':>10}")
            best[layers] = 0.0
            for k in ks:
                trainer = GroupTrainer(make_members(spec, k, tmp / layers, dataset), execution)
                try:
                    result = measure(trainer, args.steps, args.warmup, args.repeats)
                except torch.OutOfMemoryError:
                    print(f"{k:>6} out of memory")
                    break
                rate = result["rate"] / (args.threads if on_cpu else 1)
                released = RELEASED_PER_CORE[layers] if on_cpu and not args.paper else RELEASED_H200[layers]
                gflops = rate * flops / 1e9
                best[layers] = max(best[layers], result["rate"])
                print(f"{k:>6} {rate:>24.1f} {rate / released:>10.2f}x {gflops:>18.1f} "
                      f"{100 * gflops * 1e9 / (peak / (args.threads if on_cpu else 1)):>9.0f}% "
                      f"{1000 * result['seconds']:>9.2f} {result['warmup_seconds']:>10.1f} "
                      + (f"{'-':>9} {result['cpu_rate'] / args.threads:>10.1f}" if on_cpu else f"{result['memory'] / k / 1e6:>9.1f} {'-':>10}"))
                del trainer
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    if on_cpu and not args.paper:
        print(f"\nx released: against the released JAX code, one model per process on one core of the 2-core CPU "
              f"machine of the README ({RELEASED_PER_CORE['SL']:.0f} SL, {RELEASED_PER_CORE['UL']:.0f} UL model-steps/s)")
    else:
        print(f"\nx released: against the released code on an H200 at the paper's architecture "
              f"({RELEASED_H200['SL']} SL, {RELEASED_H200['UL']} UL model-steps/s)")

    grid = plan.make_plan(config)
    total = {"SL": 0, "UL": 0}
    for run in grid.runs():
        total["SL" if run.spec["shared"] else "UL"] += run.spec["steps"]
    hours = sum(total[layers] / best[layers] for layers in best if best[layers]) / 3600
    print(f"grid of {'configs/paper.yaml' if args.paper else 'config.yaml'}: {len(grid.runs())} runs, {total['SL']:.3g} SL and "
          f"{total['UL']:.3g} UL model-steps: {hours:.2f} device-hours at the rates above"
          + ("" if set(best) == {"SL", "UL"} else " (measured layer types only)"))


if __name__ == "__main__":
    main()
