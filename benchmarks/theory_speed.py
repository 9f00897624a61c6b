"""Speed of the constructed-LSA theory: vectorised package code against a plain per-example loop.

    python benchmarks/theory_speed.py

Prints (1) the wall time of every theory target built by `snakemake --cores 2` from nothing,
(2) the in-process time of the vectorised depth and stationary-point computations at the
config's settings, and (3) the time a plain loop implementation (one prompt, one position and one
ICE at a time, as the released code does) takes for a few prompts, extrapolated to the same work.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from icl import artifacts, theory
from icl import config as icl_config

REPO = Path(__file__).resolve().parents[1]


def loop_depth(x, y, xq, mask, eta, depth):
    """Per-example recursion: delta_j -= step_j * sum_{i in attn(j)} delta_i x_i.x_j, one scalar at a time."""
    n = len(y)
    delta, query = list(y), [0.0] * len(xq)
    for _ in range(depth):
        new = []
        for j in range(n):
            seen = n if mask == "prefix" else j + 1
            step = eta / (j + 1) if mask == "causal2" else eta / n
            new.append(delta[j] - step * sum(delta[i] * float(x[i] @ x[j]) for i in range(seen)))
        for q in range(len(xq)):
            query[q] -= eta / n * sum(delta[i] * float(x[i] @ xq[q]) for i in range(n))
        delta = new
    return delta, query


def loop_stationary(x, y, mask):
    """Online GD / forward substitution one ICE at a time: w_j = w_{j-1} + a_j x_j (scaled for causal2)."""
    n, d = x.shape
    a = np.zeros(n)
    for j in range(n):
        scale = 1.0 / (j + 1) if mask == "causal2" else 1.0
        known = sum(a[i] * float(x[i] @ x[j]) for i in range(j)) * scale
        a[j] = (y[j] - known) / (float(x[j] @ x[j]) * scale)
    return a


def main():
    torch.set_num_threads(1)  # as the pipeline's theory jobs run
    settings = icl_config.validate(yaml.safe_load((REPO / "config.yaml").read_text()))["theory"]
    targets = [str(p) for a in artifacts.ARTIFACTS.values() if a.inputs[0].startswith("theory") for p in a.outputs]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", "2", "-s", str(REPO / "Snakefile"),
                        "--directory", tmp, "--quiet", "all"], check=True, capture_output=True)
        pipeline = time.perf_counter() - start
    print(f"snakemake --cores 2, every theory target ({len(targets)} files) from nothing: {pipeline:.1f} s")

    etas = sorted({settings["eta"], *settings["eta_sweep"]})
    start = time.perf_counter()
    theory.depth_curves(settings, etas)
    depth_seconds = time.perf_counter() - start
    start = time.perf_counter()
    theory.stationary_curves(settings)
    stationary_seconds = time.perf_counter() - start
    print(f"vectorised: depth curves {depth_seconds:.2f} s, stationary points {stationary_seconds:.2f} s")

    # The loop on a few prompts, extrapolated to the same work as the vectorised calls.
    rng = np.random.default_rng(0)
    d, n, q, depth = settings["d"], settings["n_context"], settings["queries"], settings["max_depth"]
    sample_prompts = 2
    start = time.perf_counter()
    for _ in range(sample_prompts):
        x, xq = rng.uniform(-1, 1, (n, d)), rng.uniform(-1, 1, (q, d))
        y = x @ rng.normal(size=d)
        loop_depth(x, y, xq, "causal", 0.1, depth)
    per_prompt = (time.perf_counter() - start) / sample_prompts
    loop_depth_total = per_prompt * settings["sequences"] * settings["seeds"] * len(etas) * 3

    ns = range(settings["stationary_n"]["start"], settings["stationary_n"]["stop"] + 1, settings["stationary_n"]["step"])
    start = time.perf_counter()
    x = rng.uniform(-1, 1, (max(ns), d))
    loop_stationary(x, x @ rng.normal(size=d), "causal")
    per_solve = time.perf_counter() - start  # one prompt at the largest n; a loop code re-solves for each n
    loop_stationary_total = per_solve * sum((n_ / max(ns)) ** 2 for n_ in ns) * settings["sequences"] * settings["seeds"] \
        * len(settings["x_shifts"]) * 2
    print(f"plain loop (extrapolated from {sample_prompts} prompts): depth curves {loop_depth_total:.0f} s, "
          f"stationary points {loop_stationary_total:.0f} s")
    print(f"speed-up: depth {loop_depth_total / depth_seconds:.0f}x, stationary {loop_stationary_total / stationary_seconds:.0f}x")


if __name__ == "__main__":
    main()
