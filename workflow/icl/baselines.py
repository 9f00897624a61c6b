"""Classical learners on the same test prompts as the models, scored the same way.

Synthetic tasks (linear maps from x to every output, the one-hot scores for mc):
- least_squares: the minimum-norm least-squares fit to the visible ICEs (what prefixLM's construction
  converges to);
- ridge: least squares with an L2 penalty `RIDGE` on the weights;
- online_gd: one pass of online gradient descent with step 1/||x||^2 from w = 0 (what causalLM's
  construction converges to, Sec. 4).
Real-data episodes (classifiers fitted to the visible ICEs of each episode):
- knn: the majority label of the `KNN_K` nearest ICEs (ties go to the lower label, as in scikit-learn);
- logistic_regression: scikit-learn's L2-regularised logistic regression (C = 1).

Every baseline is scored for every number of visible ICEs, like the trained models.
"""

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

from . import data, metrics, runs, solvers, tasks, theory
from .names import BASELINES_FOR_TASK, KNN_K, RIDGE


def _linear(fit):
    """A baseline that fits one linear map per sequence, [B, k, d], and predicts with it."""
    return lambda x_context, y_context, x_query: x_query @ fit(x_context, y_context).mT


def _least_squares(x_context, y_context):
    return solvers.least_squares(x_context, y_context).mT


def _ridge(x_context, y_context):
    d = x_context.shape[-1]
    gram = x_context.mT @ x_context + RIDGE * torch.eye(d, dtype=x_context.dtype)
    return torch.linalg.solve(gram, x_context.mT @ y_context).mT


def _online_gd(x_context, y_context):
    per_output = [theory.stationary_weights(x_context, y_context[..., j], "causal")[:, -1] for j in range(y_context.shape[-1])]
    return torch.stack(per_output, dim=1)


def _knn(x_context, y_context, x_query):
    """The share of each label among the nearest ICEs, [B, q, k]."""
    k = min(KNN_K, x_context.shape[1])
    nearest = torch.cdist(x_query, x_context).topk(k, largest=False).indices  # [B, q, k]
    labels = y_context[:, None].expand(-1, x_query.shape[1], -1, -1)  # [B, q, n, classes]
    return labels.gather(2, nearest[..., None].expand(-1, -1, -1, y_context.shape[-1])).mean(2)


def _logistic_regression(x_context, y_context, x_query):
    """Class probabilities, [B, q, k]; an episode whose visible ICEs share one label predicts it."""
    labels = y_context.argmax(-1).numpy()
    probabilities = torch.zeros(*x_query.shape[:2], y_context.shape[-1], dtype=x_query.dtype)
    for b in range(len(labels)):
        present = np.unique(labels[b])
        if len(present) == 1:
            probabilities[b, :, present[0]] = 1.0
            continue
        model = LogisticRegression().fit(x_context[b].numpy(), labels[b])
        probabilities[b, :, model.classes_] = torch.as_tensor(model.predict_proba(x_query[b].numpy()), dtype=x_query.dtype)
    return probabilities


BASELINES = {
    "least_squares": _linear(_least_squares),
    "ridge": _linear(_ridge),
    "online_gd": _linear(_online_gd),
    "knn": _knn,
    "logistic_regression": _logistic_regression,
}


def predict(name: str, x_context, y_context, x_query):
    """Baseline `name`'s predictions for the queries, [B, q, k], from x_context [B, n, d], y_context [B, n, k]."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    return BASELINES[name](x_context, y_context, x_query)


def _rows(task, test_set, n: int):
    x, y = test_set["x"].double(), test_set["y"].double()
    for name in BASELINES_FOR_TASK[task.name]:
        for visible in range(1, n + 1):
            prediction = predict(name, x[:, :visible], y[:, :visible], x[:, n:])
            for metric, errors in task.errors(prediction, y[:, n:]).items():
                yield dict(model=name, test_set=test_set["test_set"], x_shift=test_set["x_shift"], n_context=visible,
                           metric=metric, value=errors.mean().item())


def evaluate(test_path, spec: dict, out_path) -> None:
    """Score the task's baselines on every set of a test file, for every number of visible ICEs."""
    task = tasks.get(spec["task"])
    rows = [row for test_set in data.load(test_path)["sets"] for row in _rows(task, test_set, spec["n_context"])]
    frame = pd.DataFrame(rows)
    identities = pd.DataFrame([
        runs.identity(spec, name, run_key=f"baseline-{name}-{spec['task']}-seed{spec['seed']}") for name in BASELINES_FOR_TASK[task.name]
    ])
    frame = frame.merge(identities, on="model", how="left").assign(split="test", layer=0, step=0)
    metrics.write(frame, out_path, spec)
