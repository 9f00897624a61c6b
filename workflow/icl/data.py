"""Dataset files: the fixed training set and the held-out test sets of one (task, seed, distribution).

Format: a `torch.save` dict of float32 tensors,
  train-b{B}.pt: {"x": [N, T, d], "y": [N, T, k], "spec": dict}, N = B * batch_size;
  test-*.pt:     {"x_shift": {shift: {"x": [M, T, d], "y": [M, T, k]}}, "spec": dict}.
T = n_context ICEs followed by n_queries queries; k = 1 for lr/nlr and 3 (one-hot) for mc.

Training sets are drawn batch by batch from a stream that depends on everything but their size,
so the set of 30 batches is the first 30 batches of the set of 1000: sizes are nested, and the
comparison across sizes (Fig. 6) is paired as well.
"""

import hashlib
import json

import torch

from . import tasks
from .files import atomic_path


def _generator(identity: dict, purpose: str) -> torch.Generator:
    digest = hashlib.sha256(json.dumps([identity, purpose], sort_keys=True).encode()).hexdigest()
    return torch.Generator().manual_seed(int(digest[:15], 16))


def _distribution(spec: dict, extra_shift: float = 0.0) -> tasks.XDistribution:
    return tasks.XDistribution(spec["x_distribution"], spec["x_scale"], spec["x_shift"] + extra_shift)


def _identity(spec: dict) -> dict:
    keys = ("task", "x_dim", "x_distribution", "x_scale", "x_shift", "n_context", "n_queries", "noise", "seed")
    return {key: spec[key] for key in keys}


def _draw(spec: dict, generator, sequences: int, extra_shift: float = 0.0):
    task = tasks.get(spec["task"], noise=spec["noise"])
    length = spec["n_context"] + spec["n_queries"]
    return tasks.sample_prompts(task, _distribution(spec, extra_shift), generator, sequences, length, spec["x_dim"])


def training_set(spec: dict) -> dict:
    generator = _generator(_identity(spec) | {"batch_size": spec["batch_size"]}, "train")
    batches = [_draw(spec, generator, spec["batch_size"]) for _ in range(spec["train_batches"])]
    return {"x": torch.cat([x for x, _ in batches]), "y": torch.cat([y for _, y in batches]), "spec": spec}


def test_sets(spec: dict, x_shifts) -> dict:
    """One test set per extra shift of x; every shift uses the same w's and unit draws of x."""
    sets = {}
    for shift in sorted({0.0, *map(float, x_shifts)}):
        generator = _generator(_identity(spec), "test")  # the same draws for every shift: paired
        x, y = _draw(spec, generator, spec["test_sequences"], extra_shift=shift)
        sets[shift] = {"x": x, "y": y}
    return {"x_shift": sets, "spec": spec}


def save(dataset: dict, path) -> None:
    with atomic_path(path) as tmp:
        torch.save(dataset, tmp)


def load(path) -> dict:
    return torch.load(path, weights_only=True)
