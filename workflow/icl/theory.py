"""The constructed LSA in closed form (Sec. 4 and App. D): gradient-descent recursions and stationary points.

Shapes: x_context [B, n, d], y_context [B, n], x_query [B, q, d]. Everything is vectorised over
sequences and queries; only the depth is a Python loop.
"""

import itertools
import math

import numpy as np
import pandas as pd
import torch

from . import runs, solvers, tasks
from .masks import MASKS

DIVERGED = 1e10  # an MSE above this is reported as +inf: the recursion has blown up


def _steps(mask: str, eta: float, n: int, dtype):
    """Per-position step of the recursion: eta/n, or eta/j for causal2 (j = 1..n)."""
    if mask == "causal2":
        return eta / torch.arange(1, n + 1, dtype=dtype)
    return torch.full((n,), eta / n, dtype=dtype)


def recursion_deltas(x_context, y_context, x_query, mask: str, eta: float, depth: int):
    """The last token coordinate after each of `depth` layers, from the weight recursions: [depth, B, n + q].

    prefix: full-batch gradient descent on one w. causal and causal2: one w_j per position, each
    updated with the residuals of ICEs 1..j (online gradient descent in the limit).
    For ICEs delta_j = y_j - w_j x_j; for queries delta_q = -w_n x_q.
    """
    if mask not in MASKS:
        raise ValueError(f"unknown mask {mask!r}; choose one of {', '.join(MASKS)}")
    batch, n, d = x_context.shape
    steps = _steps(mask, eta, n, x_context.dtype)
    weights = x_context.new_zeros(batch, n, d)  # w_j, one per ICE position
    deltas = []
    for _ in range(depth):
        residual = y_context - (weights * x_context).sum(-1)
        gradient = residual[..., None] * x_context
        if mask == "prefix":
            gradient = gradient.sum(1, keepdim=True).expand(batch, n, d)
        else:
            gradient = gradient.cumsum(1)
        weights = weights + steps[:, None] * gradient
        ice = y_context - (weights * x_context).sum(-1)
        query = -(x_query @ weights[:, -1, :, None])[..., 0]
        deltas.append(torch.cat([ice, query], dim=-1))
    return torch.stack(deltas)


def stationary_weights(x_context, y_context, mask: str):
    """Per-position weights at the recursion's fixed point, [B, n, d]; the query uses row n.

    prefix: least squares, y X^T = w X X^T, the same for every position. causal: y = a T with the
    upper-triangular Gram matrix T_ij = x_i . x_j (i <= j) and w_j = sum_{i<=j} a_i x_i.
    causal2: y = a S, S_ij = T_ij / j, and w_j = (1/j) sum_{i<=j} a_i x_i.
    The triangular system is solved in one batched call (forward substitution). Because it is
    triangular, row j does not depend on ICEs after j: one solve serves every shorter prompt.
    """
    batch, n, d = x_context.shape
    if mask == "prefix":
        solution = solvers.least_squares(x_context, y_context[..., None])[..., 0]
        return solution[:, None, :].expand(batch, n, d)
    if mask not in MASKS:
        raise ValueError(f"unknown mask {mask!r}; choose one of {', '.join(MASKS)}")
    positions = torch.arange(1, n + 1, dtype=x_context.dtype)
    gram = (x_context @ x_context.mT).triu()
    if mask == "causal2":
        gram = gram / positions
    # a T = y  <=>  T^T a^T = y^T, and T^T is lower-triangular.
    coefficients = torch.linalg.solve_triangular(gram.mT, y_context[..., None], upper=False)
    weights = (coefficients * x_context).cumsum(1)
    return weights / positions[:, None] if mask == "causal2" else weights


def _mse(errors):
    """Mean squared error per layer; non-finite or exploded values become +inf."""
    mse = (errors**2).flatten(1).mean(1).numpy()
    return np.where(np.isfinite(mse) & (mse < DIVERGED), mse, np.inf)


def _regression_prompts(generator, sequences, n_context, n_queries, d, x_shift):
    """Noiseless linear regression, x ~ U(mu - 1, mu + 1)^d, w ~ N(0, I), in float64."""
    x, y = tasks.sample_prompts(
        tasks.get("lr"), tasks.XDistribution("uniform", 1.0, x_shift), generator,
        sequences, n_context + n_queries, d, dtype=torch.float64,
    )
    y = y[..., 0]
    return x[:, :n_context], y[:, :n_context], x[:, n_context:], y[:, n_context:]


def _rows(identity: dict, **columns) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    for name, value in identity.items():
        frame[name] = value
    return frame


def _identity(mask, model, seed, eta, d, n_layers, x_shift, task="lr"):
    """The run columns of a constructed LSA or a stationary point, and the evaluation columns they share."""
    described = {"task": task, "x_dim": d, "seed": seed, "x_shift": float(x_shift)}
    return runs.identity(
        described, model, run_key=f"theory-{model}-{mask}-eta{eta:g}-mu{x_shift:g}-seed{seed}", attention="linear",
        mask=mask, n_layers=n_layers, width=d + 1, heads=1, shared=True, eta=eta,
    ) | dict(split="test", test_set="synthetic", x_shift=float(x_shift), step=0)


def depth_curves(settings: dict, etas, masks=MASKS) -> pd.DataFrame:
    """ICE and query MSE of the constructed LSA against depth 1..max_depth, for each mask, eta and seed."""
    frames = []
    depth, n = settings["max_depth"], settings["n_context"]
    for seed, eta, mask in itertools.product(range(settings["seeds"]), etas, masks):
        generator = torch.Generator().manual_seed(seed)
        x_context, y_context, x_query, y_query = _regression_prompts(
            generator, settings["sequences"], n, settings["queries"], settings["d"], 0.0
        )
        with np.errstate(over="ignore", invalid="ignore"):
            deltas = recursion_deltas(x_context, y_context, x_query, mask, eta, depth)
            ice_mse = _mse(deltas[:, :, :n])
            query_mse = _mse(y_query + deltas[:, :, n:])  # the prediction is -delta_q
        identity = _identity(mask, "lsa_constructed", seed, eta, settings["d"], depth, 0.0)
        layers = np.arange(1, depth + 1)
        for metric, values in (("ice_mse", ice_mse), ("query_mse", query_mse)):
            frames.append(_rows(identity, n_context=n, layer=layers, metric=metric, value=values))
    return pd.concat(frames, ignore_index=True)


def stationary_curves(settings: dict, masks=MASKS) -> pd.DataFrame:
    """Query MSE of each mask's stationary point against the number of ICEs, for each x shift and seed."""
    frames = []
    ns = range(settings["stationary_n"]["start"], settings["stationary_n"]["stop"] + 1, settings["stationary_n"]["step"])
    for seed, x_shift in itertools.product(range(settings["seeds"]), settings["x_shifts"]):
        generator = torch.Generator().manual_seed(seed)
        # One draw at the largest n; smaller prompts are its prefixes, so the curves are paired over n.
        x_context, y_context, x_query, y_query = _regression_prompts(
            generator, settings["sequences"], max(ns), settings["queries"], settings["d"], x_shift
        )
        for mask in masks:
            if mask == "prefix":
                query_weights = [stationary_weights(x_context[:, :n], y_context[:, :n], mask)[:, -1] for n in ns]
            else:
                every_position = stationary_weights(x_context, y_context, mask)
                query_weights = [every_position[:, n - 1] for n in ns]
            values = [_mse((x_query @ w[..., None])[None, ..., 0] - y_query[None])[0] for w in query_weights]
            identity = _identity(mask, "stationary_point", seed, math.nan, settings["d"], 0, x_shift)
            frames.append(_rows(identity, n_context=list(ns), layer=0, metric="query_mse", value=values))
    return pd.concat(frames, ignore_index=True)


def on_test_prompts(test_sets, spec: dict, settings: dict, masks=("prefix", "causal")) -> pd.DataFrame:
    """The constructed LSA's query MSE on a trained run's lr test sets, full prompt: every depth
    1..max_depth (n_layers = layer = depth) and every eta of the theory section, for each mask a
    trained model can have. Trained LSA models are compared with it on the very same prompts."""
    frames = []
    n, depth = spec["n_context"], settings["max_depth"]
    etas = sorted({settings["eta"], *settings["eta_sweep"]})
    for test_set, mask, eta in itertools.product(test_sets, masks, etas):
        x, y = test_set["x"].double(), test_set["y"][..., 0].double()
        with np.errstate(over="ignore", invalid="ignore"):
            deltas = recursion_deltas(x[:, :n], y[:, :n], x[:, n:], mask, eta, depth)
            query_mse = _mse(y[:, n:] + deltas[:, :, n:])  # the prediction is -delta_q
        identity = _identity(mask, "lsa_constructed", spec["seed"], eta, spec["x_dim"], 0, test_set["x_shift"], spec["task"])
        identity |= dict(run_key=f"{spec['task']}-{identity['run_key']}", test_set=test_set["test_set"])
        layers = np.arange(1, depth + 1)
        frames.append(_rows(identity, n_context=n, layer=layers, metric="query_mse", value=query_mse).assign(n_layers=layers))
    return pd.concat(frames, ignore_index=True)
