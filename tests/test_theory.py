"""The constructed LSA is gradient descent (Sec. 4, App. D), and the paper's claims about its fixed points.

Notation: d-dimensional x, scalar y, row vectors w. An ICE token is z_j = (x_j, y_j), a query token (x_q, 0).
delta_j is the last coordinate of token j after a layer: y_j - w_j x_j for ICEs, -w x_q for queries.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from icl import lsa, masks, metrics, theory

F64 = torch.float64
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)




def prompts(seed, batch, n, q, d, shift=0.0, noise=0.0, scale=1.0):
    """Linear-regression prompts in float64: x ~ U(shift - scale, shift + scale)^d, y = w x (+ noise)."""
    g = torch.Generator().manual_seed(seed)
    x = shift + scale * (torch.rand(batch, n + q, d, generator=g, dtype=F64) * 2 - 1)
    w = torch.randn(batch, 1, d, generator=g, dtype=F64)
    y = (x @ w.mT)[..., 0] + noise * torch.randn(batch, n + q, generator=g, dtype=F64)
    return x[:, :n], y[:, :n], x[:, n:], y[:, n:]


def run_constructed(x, y, xq, mask, eta, depth):
    n, q, d = x.shape[1], xq.shape[1], x.shape[2]
    return lsa.constructed_forward(
        lsa.tokens(x, y, xq), lsa.Construction.gradient_descent(d, eta), masks.lsa_weights(mask, n, q), depth
    )


# --- reference implementations, one example at a time, in plain Python -------------------------------


def gradient_descent_loop(x, y, xq, mask, eta, depth):
    """The weight recursions of Sec. 4 / App. D for one prompt; returns [depth, n + q] deltas.

    prefix: one w, full-batch GD  w <- w + (eta/n) sum_i (y_i - w x_i) x_i.
    causal: one w_j per ICE,      w_j <- w_j + (eta/n) sum_{i<=j} (y_i - w_i x_i) x_i.
    causal2: the same with step eta/j (1-based j) for ICE j.
    The query's own weights always take step eta/n over the residuals of all n ICEs.
    """
    x, y, xq = x.tolist(), y.tolist(), xq.tolist()
    n, d = len(x), len(x[0])
    dot = lambda a, b: sum(ai * bi for ai, bi in zip(a, b))  # noqa: E731
    w = [[0.0] * d for _ in range(n)]  # w_j for ICE j
    w_query = [0.0] * d
    out = []
    for _ in range(depth):
        # Every position's update reads the residuals of the previous layer.
        residual = [y[i] - dot(w[i], x[i]) for i in range(n)]
        new_w = []
        for j in range(n):
            if mask == "prefix":
                seen, step = range(n), eta / n
            elif mask == "causal":
                seen, step = range(j + 1), eta / n
            else:
                seen, step = range(j + 1), eta / (j + 1)
            new_w.append([w[j][k] + step * sum(residual[i] * x[i][k] for i in seen) for k in range(d)])
        w_query = [w_query[k] + eta / n * sum(residual[i] * x[i][k] for i in range(n)) for k in range(d)]
        w = new_w
        out.append([y[j] - dot(w[j], x[j]) for j in range(n)] + [-dot(w_query, xq_k) for xq_k in xq])
    return torch.tensor(out, dtype=F64)


def kaczmarz_loop(x, y):
    """Online GD to exact fit (causal stationary point): w_j = w_{j-1} + (y_j - w_{j-1} x_j) x_j / |x_j|^2."""
    n, d = x.shape
    w, rows = torch.zeros(d, dtype=F64), []
    for j in range(n):
        w = w + (y[j] - w @ x[j]) * x[j] / (x[j] @ x[j])
        rows.append(w)
    return torch.stack(rows)


def causal2_loop(x, y):
    """causal2 stationary point: w_j = (1/j) sum_{i<=j} a_i x_i with a_j chosen so that w_j x_j = y_j.

    j w_j = (j - 1) w_{j-1} + a_j x_j, so a_j = (j y_j - (j - 1) w_{j-1} x_j) / |x_j|^2.
    """
    n, d = x.shape
    w, rows = torch.zeros(d, dtype=F64), []
    for j in range(1, n + 1):
        xj = x[j - 1]
        a = (j * y[j - 1] - (j - 1) * (w @ xj)) / (xj @ xj)
        w = ((j - 1) * w + a * xj) / j
        rows.append(w)
    return torch.stack(rows)


# --- the LSA layer and the construction of eq. 5 ------------------------------------------------------


def test_linear_attention_layer_follows_its_formula_token_by_token():
    """z_j <- z_j + P V sum_i m[j, i] z_i z_i^T K^T Q z_j, for arbitrary K, Q, V, P and weights."""
    g = torch.Generator().manual_seed(3)
    T, D = 5, 4
    z = torch.randn(2, T, D, generator=g, dtype=F64)
    K, Q, V, P = (torch.randn(D, D, generator=g, dtype=F64) for _ in range(4))
    m = torch.rand(T, T, generator=g, dtype=F64)
    got = lsa.linear_attention(z, K, Q, V, P, m)
    for b in range(2):
        for j in range(T):
            zj = z[b, j][:, None]
            total = sum(m[j, i] * z[b, i][:, None] @ z[b, i][None, :] @ K.T @ Q @ zj for i in range(T))
            expected = zj + P @ V @ total
            torch.testing.assert_close(got[b, j], expected[:, 0], rtol=1e-12, atol=1e-12)


def test_construction_is_eq5():
    d, eta = 3, 0.7
    c = lsa.Construction.gradient_descent(d, eta)
    x_part = torch.diag(torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=F64))
    assert torch.equal(c.key, x_part) and torch.equal(c.query, x_part)
    assert torch.equal(c.value, torch.diag(torch.tensor([0.0, 0.0, 0.0, -1.0], dtype=F64)))
    assert torch.equal(c.proj, eta * torch.eye(d + 1, dtype=F64))


def test_tokens_are_ices_then_queries_with_zero_label():
    x, y, xq, _ = prompts(0, 2, 3, 2, 4)
    z = lsa.tokens(x, y, xq)
    assert z.shape == (2, 5, 5)
    assert torch.equal(z[:, :3, :4], x) and torch.equal(z[:, :3, 4], y)
    assert torch.equal(z[:, 3:, :4], xq) and torch.all(z[:, 3:, 4] == 0)


@pytest.mark.parametrize("mask", masks.MASKS)
def test_x_part_of_the_tokens_never_changes(mask):
    """V = diag(0, -1): the construction writes only the last coordinate."""
    n, q, d, eta = 6, 2, 3, 0.4
    x, y, xq, _ = prompts(1, 3, n, q, d, shift=0.5)
    c = lsa.Construction.gradient_descent(d, eta)
    weights = masks.lsa_weights(mask, n, q)
    z = z0 = lsa.tokens(x, y, xq)
    for _ in range(5):
        z = lsa.linear_attention(z, c.key, c.query, c.value, c.proj, weights)
        assert torch.equal(z[..., :d], z0[..., :d])
    assert not torch.allclose(z[..., d], z0[..., d])  # the labels did move


# --- constructed LSA == weight recursion (eq. 5 and App. D) -------------------------------------------


@pytest.mark.parametrize("depth", [1, 3, 7, 20])
@pytest.mark.parametrize("mask", masks.MASKS)
@pytest.mark.parametrize("eta, shift", [(0.1, 0.0), (0.5, 0.0), (0.3, 1.0)])
def test_constructed_lsa_equals_the_weight_recursion(mask, depth, eta, shift):
    n, q, d = 9, 3, 4
    x, y, xq, _ = prompts(depth, 2, n, q, d, shift=shift, scale=1 / math.sqrt(d))
    constructed = run_constructed(x, y, xq, mask, eta, depth)
    recursion = theory.recursion_deltas(x, y, xq, mask, eta, depth)
    assert constructed.shape == recursion.shape == (depth, 2, n + q)
    torch.testing.assert_close(constructed, recursion, rtol=1e-10, atol=1e-10)


@PROPERTY
@given(
    mask=st.sampled_from(masks.MASKS),
    n=st.integers(1, 10),
    q=st.integers(0, 3),
    d=st.integers(1, 5),
    depth=st.integers(1, 20),
    eta=st.floats(0.1, 0.5),
    seed=st.integers(0, 2**16),
)
def test_constructed_lsa_equals_the_weight_recursion_for_any_prompt(mask, n, q, d, depth, eta, seed):
    x, y, xq, _ = prompts(seed, 2, n, q, d, scale=1 / math.sqrt(d))
    constructed = run_constructed(x, y, xq, mask, eta, depth)
    recursion = theory.recursion_deltas(x, y, xq, mask, eta, depth)
    torch.testing.assert_close(constructed, recursion, rtol=1e-10, atol=1e-10)


def test_prefix_query_equals_gradient_descent():
    """-delta_q^(l) = w^(l) x_q with w^(l) the l-th GD iterate on L(w) = (1/2n) sum_i (y_i - w x_i)^2 from w = 0."""
    n, q, d, eta, depth = 10, 4, 3, 0.5, 12
    x, y, xq, _ = prompts(5, 1, n, q, d, noise=0.2)
    deltas = theory.recursion_deltas(x, y, xq, "prefix", eta, depth)
    constructed = run_constructed(x, y, xq, "prefix", eta, depth)
    w = torch.zeros(d, dtype=F64, requires_grad=True)
    for layer in range(depth):
        loss = 0.5 * ((y[0] - x[0] @ w) ** 2).mean()
        (gradient,) = torch.autograd.grad(loss, w)
        w = (w - eta * gradient).detach().requires_grad_()
        torch.testing.assert_close(-deltas[layer, 0, n:], xq[0] @ w.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(-constructed[layer, 0, n:], xq[0] @ w.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(deltas[layer, 0, :n], y[0] - x[0] @ w.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mask", masks.MASKS)
@pytest.mark.parametrize("seed, n, q, d, eta, depth", [(0, 1, 1, 1, 0.3, 4), (1, 5, 2, 3, 0.5, 6), (2, 8, 3, 2, 0.2, 9)])
def test_recursion_is_per_position_gradient_descent(mask, seed, n, q, d, eta, depth):
    """prefix: full-batch GD; causal: w_j sees ICEs 1..j with step eta/n; causal2: step eta/j."""
    x, y, xq, _ = prompts(seed, 2, n, q, d, shift=0.3, noise=0.1)
    deltas = theory.recursion_deltas(x, y, xq, mask, eta, depth)
    for b in range(2):
        expected = gradient_descent_loop(x[b], y[b], xq[b], mask, eta, depth)
        torch.testing.assert_close(deltas[:, b], expected, rtol=1e-12, atol=1e-12)


def test_causal_differs_from_prefix_and_causal2_after_the_first_layer():
    """Guard against a loop that cannot tell the masks apart: they agree on the query at layer 1 only."""
    x, y, xq, _ = prompts(4, 1, 6, 2, 3)
    runs = {m: theory.recursion_deltas(x, y, xq, m, 0.4, 3) for m in masks.MASKS}
    for m in ("causal", "causal2"):
        torch.testing.assert_close(runs[m][0, :, 6:], runs["prefix"][0, :, 6:])  # w^(1) identical for the query
        assert not torch.allclose(runs[m][2], runs["prefix"][2])
    assert not torch.allclose(runs["causal"][2], runs["causal2"][2])


@pytest.mark.parametrize("function", [theory.recursion_deltas, theory.stationary_weights])
def test_unknown_mask_is_rejected(function):
    x, y, xq, _ = prompts(0, 1, 3, 1, 2)
    args = (x, y, xq, "sliding", 0.1, 2) if function is theory.recursion_deltas else (x, y, "sliding")
    with pytest.raises(ValueError, match="'sliding'"):
        function(*args)


# --- stationary points -------------------------------------------------------------------------------


def test_prefix_stationary_point_is_least_squares():
    n, d = 20, 5
    x, y, _, _ = prompts(7, 3, n, 0, d, shift=0.5, noise=0.5)
    w = theory.stationary_weights(x, y, "prefix")
    assert w.shape == (3, n, d)
    normal = torch.linalg.solve(x.mT @ x, (x.mT @ y[..., None]))[..., 0]  # X^T X w = X^T y
    lstsq = torch.linalg.lstsq(x, y[..., None]).solution[..., 0]
    for j in range(n):  # the same w at every position
        torch.testing.assert_close(w[:, j], normal, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(w[:, j], lstsq, rtol=1e-10, atol=1e-10)
    # The gradient vanishes: the residual is orthogonal to every x direction.
    residual = y - (x * w).sum(-1)
    torch.testing.assert_close(x.mT @ residual[..., None], torch.zeros(3, d, 1, dtype=F64), rtol=0, atol=1e-10)


def test_prefix_stationary_point_with_fewer_ices_than_dimensions_is_the_minimum_norm_solution():
    """GD from w = 0 stays in the row space of X, so its limit is the pseudo-inverse solution."""
    n, d = 3, 6
    x, y, _, _ = prompts(8, 2, n, 0, d)
    w = theory.stationary_weights(x, y, "prefix")[:, -1]
    torch.testing.assert_close(w, (torch.linalg.pinv(x) @ y[..., None])[..., 0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mask", ["causal", "causal2"])
@pytest.mark.parametrize("seed, n, d, shift", [(0, 12, 3, 0.0), (1, 7, 7, 1.0), (2, 15, 2, 2.0)])
def test_causal_stationary_point_fits_every_ice_exactly(mask, seed, n, d, shift):
    """w*_j x_j = y_j for every j: at the fixed point every ICE's residual is zero."""
    x, y, _, _ = prompts(seed, 3, n, 0, d, shift=shift, noise=0.3)
    w = theory.stationary_weights(x, y, mask)
    assert w.shape == (3, n, d)
    torch.testing.assert_close((w * x).sum(-1), y, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed, n, d, shift", [(0, 12, 3, 0.0), (1, 7, 7, 1.0), (2, 15, 2, 2.0)])
def test_causal_stationary_point_is_online_gradient_descent(seed, n, d, shift):
    """causal: y = a T, T_ij = x_i.x_j (i <= j), w_j = sum_{i<=j} a_i x_i == Kaczmarz / online GD."""
    x, y, _, _ = prompts(seed, 3, n, 0, d, shift=shift, noise=0.3)
    w = theory.stationary_weights(x, y, "causal")
    for b in range(3):
        torch.testing.assert_close(w[b], kaczmarz_loop(x[b], y[b]), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed, n, d, shift", [(0, 12, 3, 0.0), (1, 7, 7, 1.0), (2, 15, 2, 2.0)])
def test_causal2_stationary_point_solves_the_s_system(seed, n, d, shift):
    """causal2: y = a S, S_ij = x_i.x_j / j (i <= j), w_j = (1/j) sum_{i<=j} a_i x_i."""
    x, y, _, _ = prompts(seed, 3, n, 0, d, shift=shift, noise=0.3)
    w = theory.stationary_weights(x, y, "causal2")
    for b in range(3):
        torch.testing.assert_close(w[b], causal2_loop(x[b], y[b]), rtol=1e-9, atol=1e-9)
        # Forward substitution of y_j = sum_{i<=j} a_i S_ij, then the weights from a.
        xb, yb = x[b].tolist(), y[b].tolist()
        a = []
        for j in range(n):
            s = lambda i: sum(u * v for u, v in zip(xb[i], xb[j])) / (j + 1)  # noqa: E731
            a.append((yb[j] - sum(a[i] * s(i) for i in range(j))) / s(j))
        for j in range(n):
            expected = [sum(a[i] * xb[i][k] for i in range(j + 1)) / (j + 1) for k in range(d)]
            torch.testing.assert_close(w[b, j], torch.tensor(expected, dtype=F64), rtol=1e-9, atol=1e-9)


def test_causal_and_causal2_stationary_points_differ():
    x, y, _, _ = prompts(3, 2, 10, 0, 3)
    assert not torch.allclose(theory.stationary_weights(x, y, "causal"), theory.stationary_weights(x, y, "causal2"))


@pytest.mark.parametrize("mask", ["causal", "causal2"])
def test_causal_stationary_point_of_a_shorter_prompt_is_a_prefix_of_the_longer(mask):
    """Row j depends on ICEs 1..j only: dropping later ICEs leaves the first rows unchanged."""
    n, d = 14, 4
    x, y, _, _ = prompts(9, 2, n, 0, d, shift=0.5, noise=0.2)
    full = theory.stationary_weights(x, y, mask)
    for m in (1, 4, 9, 14):
        torch.testing.assert_close(theory.stationary_weights(x[:, :m], y[:, :m], mask), full[:, :m], rtol=1e-10, atol=1e-10)


def test_prefix_stationary_point_depends_on_every_ice():
    x, y, _, _ = prompts(9, 1, 10, 0, 3, noise=0.5)
    assert not torch.allclose(theory.stationary_weights(x[:, :6], y[:, :6], "prefix"), theory.stationary_weights(x, y, "prefix")[:, :6])


@pytest.mark.parametrize("mask", masks.MASKS)
def test_recursion_converges_to_the_stationary_point(mask):
    """With a small step and enough layers, -delta_q -> w*_n x_q, and ICE residuals -> y_j - w*_j x_j."""
    n, q, d, eta, depth = 12, 5, 4, 0.5, 3000
    x, y, xq, _ = prompts(0, 4, n, q, d, noise=0.3)
    deltas = theory.recursion_deltas(x, y, xq, mask, eta, depth)[-1]
    w = theory.stationary_weights(x, y, mask)
    torch.testing.assert_close(-deltas[:, n:], (xq @ w[:, -1, :, None])[..., 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(deltas[:, :n], y - (w * x).sum(-1), rtol=0, atol=1e-6)


# --- the paper's claims, at its setting but on a small, fast scale ---------------------------------------

PAPER = dict(
    d=16, n_context=40, sequences=64, queries=16, max_depth=50, seeds=2,
    stationary_n=dict(start=10, stop=40, step=10), x_shifts=[0.0, 1.0, 2.0],
)


@pytest.mark.parametrize("mask", ["prefix", "causal"])
def test_scores_on_test_prompts_are_the_constructed_forward_pass(mask):
    """What trained LSA models are compared with: the construction run on their own test file."""
    x, y, xq, yq = prompts(seed=5, batch=6, n=7, q=3, d=3)
    test_set = {"test_set": "synthetic", "x_shift": 0.0, "x": torch.cat([x, xq], 1).float(),
                "y": torch.cat([y, yq], 1)[..., None].float()}
    settings = {"eta": 0.8, "eta_sweep": [0.4], "max_depth": 4}
    frame = theory.on_test_prompts([test_set], {"task": "lr", "seed": 0, "x_dim": 3, "n_context": 7}, settings)
    x, y, xq, yq = (t.float().double() for t in (x, y, xq, yq))  # the file holds float32
    for eta in (0.4, 0.8):
        deltas = run_constructed(x, y, xq, mask, eta, 4)[:, :, 7:]
        expected = ((yq + deltas) ** 2).mean((1, 2))  # the prediction is minus the query's last coordinate
        rows = frame[(frame["mask"] == mask) & (frame["eta"] == eta)].sort_values("n_layers")
        np.testing.assert_allclose(rows["value"], expected.numpy(), rtol=1e-9)
        assert (rows["layer"] == rows["n_layers"]).all() and list(rows["n_layers"]) == [1, 2, 3, 4]
    assert len(metrics.to_table(frame, {})) == 2 * 2 * 4


@pytest.fixture(scope="module")
def depth_frame():
    return theory.depth_curves(PAPER, [1.6])


@pytest.fixture(scope="module")
def stationary_frame():
    return theory.stationary_curves(PAPER)


def _query_mse(frame, mask, layer=None):
    rows = frame[(frame["mask"] == mask) & (frame["metric"] == "query_mse")]
    if layer is not None:
        rows = rows[rows["layer"] == layer]
    return rows


def test_causal_lsa_stalls_while_prefix_lsa_reaches_least_squares(depth_frame):
    """The paper's main claim: at depth 50 with eta = 1.6, prefix query MSE < 1e-3, causal stays > 1e-1."""
    prefix = _query_mse(depth_frame, "prefix", 50)
    causal = _query_mse(depth_frame, "causal", 50)
    assert len(prefix) == len(causal) == PAPER["seeds"]
    assert (prefix["value"] < 1e-3).all(), prefix
    assert (causal["value"] > 1e-1).all(), causal
    # Both start from the same first layer (one GD step from w = 0 is the same for every mask's query).
    first = {m: _query_mse(depth_frame, m, 1).set_index("seed")["value"] for m in masks.MASKS}
    np.testing.assert_allclose(first["prefix"], first["causal"], rtol=1e-12)
    np.testing.assert_allclose(first["prefix"], first["causal2"], rtol=1e-12)


def test_causal2_at_large_step_is_reported_as_diverged(depth_frame):
    """causal2's step eta/j is eta at j = 1: at eta = 1.6 it blows up and is reported as +inf, not a finite overflow."""
    causal2 = depth_frame[depth_frame["mask"] == "causal2"]
    values = causal2["value"].to_numpy()
    assert not np.isnan(depth_frame["value"].to_numpy()).any()
    assert not (np.isfinite(values) & (values >= theory.DIVERGED)).any()  # huge but finite is not allowed
    assert np.isposinf(_query_mse(depth_frame, "causal2", 50)["value"]).all()
    for _, curve in causal2.groupby(["seed", "metric"]):
        diverged = np.isposinf(curve.sort_values("layer")["value"].to_numpy())
        first = diverged.argmax()
        assert diverged[first:].all()  # once diverged, it stays diverged
    assert np.isfinite(depth_frame[depth_frame["mask"] != "causal2"]["value"]).all()


def test_causal_stationary_error_grows_with_the_x_shift(stationary_frame):
    """Shifting x by mu_x hurts the causal stationary point; prefix is unaffected (n >= d)."""
    table = _query_mse(stationary_frame, "causal").groupby(["n_context", "x_shift"])["value"].mean().unstack()
    for n, row in table.iterrows():
        assert row[0.0] < row[1.0] < row[2.0], (n, row)
    prefix = _query_mse(stationary_frame, "prefix")
    assert (prefix[prefix["n_context"] >= PAPER["d"]]["value"] < 1e-20).all()


def test_causal2_stationary_error_is_above_causal(stationary_frame):
    """App. D: the eta/j normalisation does not rescue the causal mask; its fixed point is even worse."""
    mean = lambda m: _query_mse(stationary_frame, m).groupby(["n_context", "x_shift"])["value"].mean()  # noqa: E731
    causal, causal2, prefix = mean("causal"), mean("causal2"), mean("prefix")
    assert (causal2 > causal).all(), (causal2, causal)
    at_40 = lambda s: s.xs(40, level="n_context")  # noqa: E731
    assert (at_40(prefix) < at_40(causal)).all()


def test_causal_stationary_error_falls_with_more_ices(stationary_frame):
    table = _query_mse(stationary_frame, "causal").groupby(["x_shift", "n_context"])["value"].mean().unstack()
    for _, row in table.iterrows():
        assert (np.diff(row.to_numpy()) < 0).all(), row


# --- output frames ------------------------------------------------------------------------------------


def test_depth_curves_fit_the_metrics_schema(depth_frame):
    assert sorted(depth_frame.columns) == sorted(metrics.COLUMNS)
    table = metrics.to_table(depth_frame, {})
    assert table.num_rows == PAPER["seeds"] * len(masks.MASKS) * 2 * PAPER["max_depth"]
    assert table.schema.equals(metrics.SCHEMA, check_metadata=False)
    assert set(depth_frame["layer"]) == set(range(1, PAPER["max_depth"] + 1))
    assert set(depth_frame["metric"]) == {"ice_mse", "query_mse"}
    assert (depth_frame["n_context"] == PAPER["n_context"]).all()
    assert (depth_frame["model"] == "lsa_constructed").all() and (depth_frame["eta"] == 1.6).all()


def test_stationary_curves_have_the_metrics_columns(stationary_frame):
    assert sorted(stationary_frame.columns) == sorted(metrics.COLUMNS)
    ns = range(PAPER["stationary_n"]["start"], PAPER["stationary_n"]["stop"] + 1, PAPER["stationary_n"]["step"])
    assert len(stationary_frame) == PAPER["seeds"] * len(PAPER["x_shifts"]) * len(masks.MASKS) * len(ns)
    assert set(stationary_frame["n_context"]) == set(ns)
    assert (stationary_frame["layer"] == 0).all() and stationary_frame["eta"].isna().all()


def test_stationary_curves_fit_the_metrics_schema(stationary_frame):
    table = metrics.to_table(stationary_frame, {})
    assert table.num_rows == len(stationary_frame)
    assert table.schema.equals(metrics.SCHEMA, check_metadata=False)
    assert np.isnan(table.column("eta").to_numpy(zero_copy_only=False)).all()


def test_theory_curves_are_deterministic():
    small = dict(PAPER, max_depth=5, sequences=8, seeds=1)
    a, b = theory.depth_curves(small, [0.5]), theory.depth_curves(small, [0.5])
    assert a.equals(b)
