"""Classical learners on the same test prompts as the models: the optimum and the theory's causal limit.

- least_squares: the minimum-norm least-squares fit to the visible ICEs (what prefixLM's construction
  converges to);
- ridge: least squares with an L2 penalty `ridge` on the weights;
- online_gd: one pass of online gradient descent with step 1/||x||^2 from w = 0 (what causalLM's
  construction converges to, Sec. 4).

Each fits one linear map per sequence from x to every output (the one-hot scores for mc) and is
scored by the task's own error, for every number of visible ICEs, like the trained models.
"""

import pandas as pd
import torch

from . import data, metrics, tasks, theory

BASELINES = ("least_squares", "ridge", "online_gd")
RIDGE = 0.1


def weights(x_context, y_context, name: str):
    """[B, k, d] fitted weights; x_context [B, n, d], y_context [B, n, k]."""
    if name == "least_squares":
        return torch.linalg.lstsq(x_context, y_context).solution.mT
    if name == "ridge":
        d = x_context.shape[-1]
        gram = x_context.mT @ x_context + RIDGE * torch.eye(d, dtype=x_context.dtype)
        return torch.linalg.solve(gram, x_context.mT @ y_context).mT
    if name == "online_gd":
        per_output = [theory.stationary_weights(x_context, y_context[..., j], "causal")[:, -1] for j in range(y_context.shape[-1])]
        return torch.stack(per_output, dim=1)
    raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")


def evaluate(test_path, spec: dict, out_path) -> None:
    """Score every baseline on a test file, for every number of visible ICEs and every x shift."""
    task = tasks.get(spec["task"])
    n = spec["n_context"]
    rows = []
    for shift, sets in data.load(test_path)["x_shift"].items():
        x, y = sets["x"].double(), sets["y"].double()
        for name in BASELINES:
            for visible in range(1, n + 1):
                w = weights(x[:, :visible], y[:, :visible], name)
                prediction = x[:, n:] @ w.mT
                for metric, errors in task.errors(prediction, y[:, n:]).items():
                    rows.append(dict(model=name, n_context=visible, x_shift=shift, metric=metric, value=errors.mean().item()))
    frame = pd.DataFrame(rows).assign(
        run_key=lambda f: "baseline-" + f["model"] + f"-{spec['task']}-seed{spec['seed']}", task=spec["task"],
        attention="none", mask="none", n_layers=0, width=0, heads=0, shared=False, l2=False, permute=False,
        train_batches=0, seed=spec["seed"], eta=None, split="test", layer=0, step=0,
    )
    metrics.write(frame, out_path, spec)
