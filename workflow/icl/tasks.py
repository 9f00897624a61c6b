"""In-context learning tasks: how x, the per-sequence weights and the labels are drawn, and how errors are scored.

A task is a small class registered by name (TASKS), so that config selects it. Adding a task touches
this file, the task enumeration of workflow/schemas/config.schema.yaml (tests/test_config.py checks
that they agree) and icl.names (BASELINES_FOR_TASK, the classical learners drawn beside it, HEADLINE_METRIC, and
OUTPUT_DIM, its label width, which a task class reads from there; tests/test_artifacts.py checks them against this registry).
"""

from dataclasses import dataclass

import torch

from . import names

X_DISTRIBUTIONS = ("uniform", "normal")


@dataclass(frozen=True)
class XDistribution:
    """x ~ U(shift - scale, shift + scale)^d or N(shift, scale^2 I)."""

    kind: str = "uniform"
    scale: float = 1.0
    shift: float = 0.0

    def sample(self, generator, shape, dtype=torch.float32):
        if self.kind == "uniform":
            unit = torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1
        elif self.kind == "normal":
            unit = torch.randn(shape, generator=generator, dtype=dtype)
        else:
            raise ValueError(f"unknown x distribution {self.kind!r}; choose one of {', '.join(X_DISTRIBUTIONS)}")
        return self.shift + self.scale * unit


class Task:
    """A family of functions x -> y, one drawn per sequence."""

    name: str
    output_dim: int
    weight_rows = 1

    def __init__(self, noise: float = 0.0):
        self.noise = noise

    def sample_weights(self, generator, sequences: int, d: int, dtype=torch.float32):
        """w ~ N(0, I), one [output, d] matrix per sequence."""
        return torch.randn(sequences, self.weight_rows, d, generator=generator, dtype=dtype)

    def labels(self, x, weights, generator):
        """y for x: [B, T, d] under per-sequence weights [B, rows, d]; returns [B, T, output_dim]."""
        raise NotImplementedError

    def errors(self, prediction, target) -> dict[str, torch.Tensor]:
        """Per-example errors, [...] each, by metric name: the squared error summed over outputs."""
        return {"query_mse": ((prediction - target) ** 2).sum(-1)}


class LinearRegression(Task):
    name = "lr"
    output_dim = names.OUTPUT_DIM[name]

    def labels(self, x, weights, generator):
        y = x @ weights.mT
        return y + self.noise * torch.randn(y.shape, generator=generator, dtype=y.dtype)


class NonLinearRegression(Task):
    """y = sigmoid(w x) - 0.5: the released code's centring, so that targets have mean zero like LR's."""

    name = "nlr"
    output_dim = names.OUTPUT_DIM[name]

    def labels(self, x, weights, generator):
        y = torch.sigmoid(x @ weights.mT) - 0.5
        return y + self.noise * torch.randn(y.shape, generator=generator, dtype=y.dtype)


class Classification(Task):
    """One-hot labels, scored also by the error rate of the arg-max class."""

    def errors(self, prediction, target):
        errors = super().errors(prediction, target)
        errors["query_error_pct"] = 100.0 * (prediction.argmax(-1) != target.argmax(-1)).to(prediction.dtype)
        return errors


class MultiClass(Classification):
    """y = one-hot(argmax_c w_c x), one w_c per class; `noise` is the chance of a uniformly random label."""

    name = "mc"
    output_dim = names.OUTPUT_DIM[name]
    weight_rows = 3

    def labels(self, x, weights, generator):
        label = (x @ weights.mT).argmax(-1)
        flip = torch.rand(label.shape, generator=generator) < self.noise
        random_label = torch.randint(self.output_dim, label.shape, generator=generator)
        label = torch.where(flip, random_label, label)
        return torch.nn.functional.one_hot(label, self.output_dim).to(x.dtype)


class RealClassification(Classification):
    """Two-way episodes of real datasets; icl.episodes draws them instead of labels()."""

    name = "real"
    output_dim = names.OUTPUT_DIM[name]


TASKS = {task.name: task for task in (LinearRegression, NonLinearRegression, MultiClass, RealClassification)}


def get(name: str, noise: float = 0.0) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name](noise=noise)


def sample_prompts(task: Task, x_distribution: XDistribution, generator, sequences, length, d, dtype=torch.float32):
    """Draw `sequences` prompts of `length` positions: x [B, length, d] and y [B, length, output_dim]."""
    x = x_distribution.sample(generator, (sequences, length, d), dtype)
    weights = task.sample_weights(generator, sequences, d, dtype)
    return x, task.labels(x, weights, generator)
