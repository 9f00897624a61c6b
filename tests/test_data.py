"""The prompts of the paper's tasks (Sec. 5.2): how x, the per-sequence weights and the labels are drawn.

- lr: y = w x with w ~ N(0, I) per sequence; nlr: y = sigmoid(w x) - 0.5; mc: y = one-hot(argmax_c w_c x).
- x ~ U(mu_x - scale, mu_x + scale)^d (or normal), and test sets shift mu_x with the same draws (paired).
- Training sets of different sizes are nested, so the comparison across sizes (Fig. 6) is paired.
"""

import pytest
import torch

from icl import config, data, tasks




def spec(**overrides):
    cfg = config.validate({})
    base = {**cfg["data"], **cfg["model"], **cfg["train"], "seed": 0}
    base.update(x_dim=3, n_context=6, n_queries=2, train_batches=4, batch_size=4, test_sequences=8)
    base.update(overrides)
    return base


def least_squares_residual(x, y):
    """Per-sequence max residual of fitting y = x w (no intercept): [B]."""
    w = torch.linalg.lstsq(x.double(), y.double()).solution
    return (x.double() @ w - y.double()).abs().amax((-2, -1)), w


# --- training sets ---


def test_training_set_shapes_and_dtype():
    for task, k in (("lr", 1), ("nlr", 1), ("mc", 3)):
        s = data.training_set(spec(task=task))
        assert s["x"].shape == (16, 8, 3) and s["y"].shape == (16, 8, k)
        assert s["x"].dtype == s["y"].dtype == torch.float32


@pytest.mark.parametrize("task", ["lr", "mc"])
def test_training_sets_are_nested(task):
    """The set of 4 batches is the first 4 batches of the set of 8."""
    small = data.training_set(spec(task=task, train_batches=4))
    large = data.training_set(spec(task=task, train_batches=8))
    assert len(large["x"]) == 2 * len(small["x"])
    torch.testing.assert_close(large["x"][: len(small["x"])], small["x"], rtol=0, atol=0)
    torch.testing.assert_close(large["y"][: len(small["y"])], small["y"], rtol=0, atol=0)
    assert not torch.equal(large["x"][len(small["x"]) :], small["x"])  # the extra batches are new prompts


def test_training_sets_are_deterministic_and_seeded():
    a, b = data.training_set(spec(seed=0)), data.training_set(spec(seed=0))
    torch.testing.assert_close(a["x"], b["x"], rtol=0, atol=0)
    torch.testing.assert_close(a["y"], b["y"], rtol=0, atol=0)
    c = data.training_set(spec(seed=1))
    assert (a["x"] - c["x"]).abs().max() > 0.1
    assert (a["y"] - c["y"]).abs().max() > 0.1


def test_training_set_does_not_depend_on_model_or_optimiser_keys():
    """Runs that differ only in mask, model or schedule train on the very same prompts."""
    a = data.training_set(spec())
    b = data.training_set(spec(mask="causal", width=8, learning_rate=1e-2, l2=True, steps=7))
    torch.testing.assert_close(a["x"], b["x"], rtol=0, atol=0)


def test_save_and_load_round_trip(tmp_path):
    s = data.training_set(spec())
    path = tmp_path / "sub" / "train-b4.pt"
    data.save(s, path)
    loaded = data.load(path)
    torch.testing.assert_close(loaded["x"], s["x"], rtol=0, atol=0)
    torch.testing.assert_close(loaded["y"], s["y"], rtol=0, atol=0)
    assert loaded["spec"] == s["spec"]
    assert [p.name for p in path.parent.iterdir()] == ["train-b4.pt"]  # no temporary file left


# --- test sets ---


def test_shifted_test_sets_share_their_draws():
    """x_shift adds mu_x to the same unit draws, and the same w's label them."""
    s = spec(test_sequences=16)
    sets = {t["x_shift"]: t for t in data.test_sets(s, [1.0, 2.5])["sets"]}
    assert sorted(sets) == [0.0, 1.0, 2.5]
    assert {t["test_set"] for t in sets.values()} == {"synthetic"}
    base = sets[0.0]
    for shift in (1.0, 2.5):
        shifted = sets[shift]
        torch.testing.assert_close(shifted["x"] - base["x"], torch.full_like(base["x"], shift), rtol=0, atol=1e-5)
        # the same w per sequence: fit w on each set (lr labels are exactly linear) and compare
        residual_base, w_base = least_squares_residual(base["x"], base["y"])
        residual_shift, w_shift = least_squares_residual(shifted["x"], shifted["y"])
        assert residual_base.max() < 1e-4 and residual_shift.max() < 1e-4
        torch.testing.assert_close(w_shift, w_base, rtol=0, atol=1e-4)
    assert base["x"].min() >= -1 and base["x"].max() <= 1
    assert sets[2.5]["x"].min() >= 1.5 and sets[2.5]["x"].max() <= 3.5


def test_test_sets_are_held_out_from_training():
    s = spec(test_sequences=16)
    train = data.training_set(s)
    [test] = data.test_sets(s, [])["sets"]
    assert test["x"].shape == (16, 8, 3)
    # no test prompt is a training prompt
    distance = (test["x"][:, None] - train["x"][None]).abs().amax((-2, -1))
    assert distance.min() > 0.1
    # and the test set is deterministic
    torch.testing.assert_close(data.test_sets(s, [])["sets"][0]["x"], test["x"], rtol=0, atol=0)


# --- tasks ---


def draw(task_name, sequences=64, length=10, d=3, noise=0.0, seed=0, distribution=tasks.XDistribution()):
    generator = torch.Generator().manual_seed(seed)
    return tasks.sample_prompts(tasks.get(task_name, noise=noise), distribution, generator, sequences, length, d)


def test_lr_labels_are_w_x():
    task = tasks.get("lr")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, 3, generator=generator)
    w = torch.randn(5, 1, 3, generator=generator)
    y = task.labels(x, w, generator)
    expected = torch.einsum("btd,bd->bt", x, w[:, 0])[..., None]
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=1e-6)


def test_lr_prompts_are_exactly_linear_with_one_gaussian_w_per_sequence():
    x, y = draw("lr", sequences=2000, length=8, d=3)
    assert y.shape == (2000, 8, 1)
    residual, w = least_squares_residual(x, y)
    assert residual.max() < 1e-4
    w = w[..., 0]  # [sequences, d]
    assert abs(w.mean().item()) < 0.05
    assert abs(w.std().item() - 1.0) < 0.05
    assert (w[0] - w[1]).abs().max() > 1e-3  # a fresh w per sequence


def test_nlr_labels_are_centred_sigmoids_of_w_x():
    task = tasks.get("nlr")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, 3, generator=generator)
    w = torch.randn(5, 1, 3, generator=generator)
    torch.testing.assert_close(task.labels(x, w, generator), torch.sigmoid(x @ w.mT) - 0.5, rtol=1e-6, atol=1e-6)

    x, y = draw("nlr", sequences=500)
    assert ((y > -0.5) & (y < 0.5)).all()
    assert y.min() < -0.2 and y.max() > 0.2  # not squashed to a constant
    # logit(y + 1/2) is linear in x
    residual, _ = least_squares_residual(x, torch.logit(y.double() + 0.5))
    assert residual.max() < 1e-3


def test_mc_labels_are_one_hot_argmax():
    task = tasks.get("mc")
    assert task.output_dim == 3
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(6, 9, 4, generator=generator)
    w = task.sample_weights(generator, 6, 4)
    assert w.shape == (6, 3, 4)
    y = task.labels(x, w, generator)
    expected = torch.nn.functional.one_hot(torch.einsum("btd,bcd->btc", x, w).argmax(-1), 3).float()
    torch.testing.assert_close(y, expected, rtol=0, atol=0)

    x, y = draw("mc", sequences=200)
    assert y.shape == (200, 10, 3)
    assert ((y == 0) | (y == 1)).all() and (y.sum(-1) == 1).all()
    counts = y.sum((0, 1))
    assert (counts > 0.2 * counts.sum()).all()  # all three classes occur


def test_mc_error_pct_is_100_times_the_argmax_mismatch():
    task = tasks.get("mc")
    target = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2, 2]]), 3).float()
    prediction = torch.tensor([[[0.9, 0.1, 0.0], [0.5, 0.2, 0.3], [0.0, 0.0, 0.1], [0.2, 0.7, 0.1]]])
    errors = task.errors(prediction, target)
    torch.testing.assert_close(errors["query_error_pct"], torch.tensor([[0.0, 100.0, 0.0, 100.0]]))
    torch.testing.assert_close(errors["query_mse"], ((prediction - target) ** 2).sum(-1))
    assert set(tasks.get("lr").errors(prediction[..., :1], target[..., :1])) == {"query_mse"}


def test_label_noise_changes_lr_labels_by_its_std():
    x0, y0 = draw("lr", sequences=500, seed=3)
    x1, y1 = draw("lr", sequences=500, seed=3, noise=0.1)
    torch.testing.assert_close(x1, x0, rtol=0, atol=0)  # the same prompts, noisier labels
    difference = y1 - y0
    assert abs(difference.std().item() - 0.1) < 0.01
    assert abs(difference.mean().item()) < 0.01


def test_label_noise_flips_some_mc_labels():
    noise = 0.3
    _, y0 = draw("mc", sequences=500, seed=4)
    _, y1 = draw("mc", sequences=500, seed=4, noise=noise)
    assert ((y1 == 0) | (y1 == 1)).all() and (y1.sum(-1) == 1).all()  # still one-hot
    flipped = (y1.argmax(-1) != y0.argmax(-1)).float().mean().item()
    # a random class replaces the label with chance `noise`, and differs from it 2 times in 3
    assert abs(flipped - noise * 2 / 3) < 0.03


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="unknown task"):
        tasks.get("xor")


# --- x distributions ---


@pytest.mark.parametrize("scale,shift", [(1.0, 0.0), (0.5, 2.0), (2.0, -1.0)])
def test_uniform_x_lies_in_its_interval_and_fills_it(scale, shift):
    x = tasks.XDistribution("uniform", scale, shift).sample(torch.Generator().manual_seed(0), (20000,))
    assert x.min() >= shift - scale and x.max() <= shift + scale
    assert x.min() < shift - 0.99 * scale and x.max() > shift + 0.99 * scale
    assert abs(x.mean().item() - shift) < 0.02 * scale
    assert abs(x.std().item() - scale / 3**0.5) < 0.02 * scale


@pytest.mark.parametrize("scale,shift", [(1.0, 0.0), (0.5, 2.0)])
def test_normal_x_has_its_mean_and_std(scale, shift):
    x = tasks.XDistribution("normal", scale, shift).sample(torch.Generator().manual_seed(0), (20000,))
    assert abs(x.mean().item() - shift) < 0.03 * scale
    assert abs(x.std().item() - scale) < 0.03 * scale
    assert x.min() < shift - 3 * scale  # not uniform: it has tails


def test_training_set_follows_its_x_distribution():
    s = data.training_set(spec(x_distribution="uniform", x_scale=0.5, x_shift=1.0))
    assert s["x"].min() >= 0.5 and s["x"].max() <= 1.5
    n = data.training_set(spec(x_distribution="normal", x_scale=2.0, x_shift=0.0, train_batches=50))
    assert abs(n["x"].std().item() - 2.0) < 0.15
