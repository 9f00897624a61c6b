"""Dataset files: the fixed training set and the held-out test sets of one (task, seed, distribution).

Format: a checked file (icl.checked: a SHA-256 header, then `torch.save` bytes) of a dict of float32 tensors,
  train-b{B}.pt: {"x": [N, T, d], "y": [N, T, k], "spec": dict}, N = B * batch_size;
  test-*.pt:     {"sets": [{"test_set": str, "x_shift": float, "x": [M, T, d], "y": [M, T, k]}, ...], "spec": dict}.
T = n_context ICEs followed by n_queries queries; k = 1 for lr/nlr, 3 (one-hot) for mc and 2 for real.
A synthetic task's test sets are its prompts at each shift of x (test_set "synthetic"); the real
task's are the held-out splits of icl.episodes (x_shift 0).

Training sets are drawn batch by batch from a stream that depends on everything but their size,
so the set of 30 batches is the first 30 batches of the set of 1000: sizes are nested, and the
comparison across sizes (Fig. 6) is paired as well.
"""

import hashlib
import json

import torch

from . import checked, runs, tasks

REBUILD = "To rebuild it, delete it and rerun the same snakemake command."


def _generator(identity: dict, purpose: str) -> torch.Generator:
    digest = hashlib.sha256(json.dumps([identity, purpose], sort_keys=True).encode()).hexdigest()
    return torch.Generator().manual_seed(int(digest[:15], 16))


def _distribution(spec: dict, extra_shift: float = 0.0) -> tasks.XDistribution:
    return tasks.XDistribution(spec["x_distribution"], spec["x_scale"], spec["x_shift"] + extra_shift)


def _identity(spec: dict) -> dict:
    """What a dataset's random stream depends on."""
    return {key: spec[key] for key in runs.PROMPT_KEYS + ("seed",)}


def _draw(spec: dict, generator, sequences: int, extra_shift: float = 0.0, pools=None):
    if spec["task"] == "real":
        from . import episodes  # scikit-learn, only for the real task

        pools = pools or episodes.TRAIN_POOLS
        return episodes.draw(pools, generator, sequences, spec["n_context"] + spec["n_queries"], spec["x_dim"])
    task = tasks.get(spec["task"], noise=spec["noise"])
    length = spec["n_context"] + spec["n_queries"]
    return tasks.sample_prompts(task, _distribution(spec, extra_shift), generator, sequences, length, spec["x_dim"])


def training_set(spec: dict) -> dict:
    generator = _generator(_identity(spec) | {"batch_size": spec["batch_size"]}, "train")
    batches = [_draw(spec, generator, spec["batch_size"]) for _ in range(spec["train_batches"])]
    return {"x": torch.cat([x for x, _ in batches]), "y": torch.cat([y for _, y in batches]), "spec": spec}


def test_sets(spec: dict, x_shifts) -> dict:
    """The held-out test sets: one per extra shift of x (the same w's and unit draws of x for every
    shift, so shifts are paired), or the real task's held-out splits."""
    sets = []
    if spec["task"] == "real":
        from . import episodes

        for name, pools in episodes.TEST_SETS.items():
            x, y = _draw(spec, _generator(_identity(spec), f"test-{name}"), spec["test_sequences"], pools=pools)
            sets.append({"test_set": name, "x_shift": 0.0, "x": x, "y": y})
    else:
        for shift in sorted({0.0, *map(float, x_shifts)}):
            x, y = _draw(spec, _generator(_identity(spec), "test"), spec["test_sequences"], extra_shift=shift)
            sets.append({"test_set": "synthetic", "x_shift": shift, "x": x, "y": y})
    return {"sets": sets, "spec": spec}


def save(dataset: dict, path) -> None:
    checked.save(dataset, path)


def load(path) -> dict:
    return checked.load(path, remedy=REBUILD)
