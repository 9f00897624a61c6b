"""Training throughput of run groups: model-steps per second against the group size K.

    python benchmarks/train_throughput.py                       # the paper's architecture (configs/paper.yaml)
    python benchmarks/train_throughput.py --small               # the default config's architecture (CPU)
    python benchmarks/train_throughput.py --precision bf16 --compile default --ks 32 128 512

For each of SL and UL it trains groups of K models (alternating prefix and causal masks) on a
small synthetic training set, times --steps steps after --warmup steps, and prints model-steps/s,
the step time, the peak device memory (total and per model) and the fraction of the device's
peak FLOP/s. K doubles until memory runs out or throughput stops growing. Finally it projects
the device-hours of the whole config's grid from the best rate of each architecture.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import yaml

from icl import config as icl_config
from icl import data, models, plan, runs, tasks
from icl.training import GroupTrainer, set_precision

REPO = Path(__file__).resolve().parents[1]
# Released code (google-research/causallm_icl), one model per process, H200, paper architecture.
RELEASED = {"SL": 50.8, "UL": 26.5}
# Dense peak TFLOP/s of an H100/H200 SXM by matmul precision.
PEAK_TFLOPS = {"fp32": 67.0, "tf32": 494.0, "bf16": 989.0}


def load_config(small: bool) -> dict:
    merged = yaml.safe_load((REPO / "config.yaml").read_text())
    if not small:
        for key, value in yaml.safe_load((REPO / "configs" / "paper.yaml").read_text()).items():
            merged[key] = merged.get(key, {}) | value if isinstance(value, dict) and key != "sweeps" else value
    return icl_config.validate(merged)


def base_spec(config: dict, shared: bool, precision: str) -> dict:
    spec = {k: v for section in icl_config.RUN_SECTIONS for k, v in config[section].items()}
    return spec | {"task": "lr", "shared": shared, "precision": precision, "train_batches": 8, "seed": 0}


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


def measure(spec, k, execution, args, directory, dataset):
    """Model-steps/s, seconds per step and peak memory in bytes for a group of k models."""
    trainer = GroupTrainer(make_members(spec, k, directory, dataset), execution)
    set_precision(spec["precision"])
    device = trainer.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        trainer.train_step()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    sync()
    seconds = (time.perf_counter() - start) / args.steps
    memory = torch.cuda.max_memory_allocated() if device.type == "cuda" else float("nan")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            for _ in range(5):
                trainer.train_step()
            sync()
        sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        print(prof.key_averages().table(sort_by=sort, row_limit=15))
    return k / seconds, seconds, memory


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="the default config's architecture instead of the paper's")
    parser.add_argument("--ks", type=int, nargs="+", help="group sizes (default: 1, 8, 32, 128, ... doubling)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    parser.add_argument("--compile", default="off", choices=["off", "default", "reduce-overhead", "max-autotune"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--max-k", type=int, default=4096)
    parser.add_argument("--layers", choices=["SL", "UL", "both"], default="both")
    parser.add_argument("--profile", action="store_true", help="print a profiler summary at each K")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = load_config(args.small)
    execution = config["execution"] | {"device": args.device, "compile": args.compile, "log_every": 10**9}
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for layers in (["SL", "UL"] if args.layers == "both" else [args.layers]):
            spec = base_spec(config, layers == "SL", args.precision)
            dataset = tmp / f"{layers}.pt"
            data.save(data.training_set(spec), dataset)
            model_config = models.ModelConfig.from_spec(spec, tasks.get("lr").output_dim)
            flops = models.training_flops(model_config, spec["batch_size"])
            print(f"\n{layers}: {runs.architecture(spec)}, batch {spec['batch_size']}, {model_config.n_positions} positions, "
                  f"{flops / 1e9:.2f} GFLOP per model-step, precision {args.precision}, compile {args.compile}")
            print(f"{'K':>6} {'model-steps/s':>14} {'ms/step':>9} {'peak GB':>8} {'MB/model':>9} {'% of peak':>10}")
            ks = args.ks or [1, 8] + [32 * 2**i for i in range(12) if 32 * 2**i <= args.max_k]
            previous = 0.0
            for k in ks:
                try:
                    rate, seconds, memory = measure(spec, k, execution, args, tmp / layers, dataset)
                except torch.OutOfMemoryError:
                    print(f"{k:>6} out of memory")
                    break
                device = "cuda" if memory == memory else "cpu"
                share = f"{100 * rate * flops / (PEAK_TFLOPS[args.precision] * 1e12):.1f}" if device == "cuda" else "-"
                print(f"{k:>6} {rate:>14.1f} {1000 * seconds:>9.2f} {memory / 1e9:>8.2f} {memory / k / 1e6:>9.1f} {share:>10}")
                best[layers] = max(best.get(layers, 0.0), rate)
                if args.ks is None and rate < 1.05 * previous:
                    break  # saturated
                previous = rate
                if device == "cuda":
                    torch.cuda.empty_cache()
            if device == "cuda":
                print(f"best {layers}: {best[layers]:.0f} model-steps/s = {best[layers] / RELEASED[layers]:.1f}x the released code on an H200")

    grid = plan.make_plan(config)
    total = {"SL": 0, "UL": 0}
    for run in grid.runs():
        total["SL" if run.spec["shared"] else "UL"] += run.spec["steps"]
    hours = sum(total[l] / best[l] for l in best) / 3600
    print(f"\ngrid of {'config.yaml' if args.small else 'configs/paper.yaml'}: {len(grid.runs())} runs, "
          f"{total['SL']:.3g} SL and {total['UL']:.3g} UL model-steps: {hours:.2f} device-hours at the best rates above"
          + ("" if set(best) == {"SL", "UL"} else " (measured architectures only)"))


if __name__ == "__main__":
    main()
