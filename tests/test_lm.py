"""The language model and its objectives: which tokens are targets, and that no target is visible where it is predicted."""

import pytest
import torch

from icl import lm, models

CONFIG = lm.LMConfig(vocab_size=11, context=12, n_layers=2, width=16, heads=2, ffn_width=32)


def model(k=1, seeds=(0,)):
    m = lm.LanguageModel(k, CONFIG)
    lm.initialise(m, list(seeds))
    return m.eval()


@pytest.mark.parametrize("objective", lm.OBJECTIVES)
def test_targets_of_each_objective(objective):
    split = torch.tensor([1, 4, 11])
    passes = lm.passes(objective, split, 12)
    targets = torch.stack([t for _, t in passes]).int()  # [passes, B, T - 1]; column t - 1 is token t
    assert targets.shape[1:] == (3, 11)
    token = torch.arange(1, 12)
    suffix = token[None] >= split[:, None]
    if objective == "causal":
        assert targets.sum(0).eq(1).all()
    elif objective == "prefix":
        assert len(passes) == 1 and torch.equal(targets[0].bool(), suffix)  # the suffix tokens only
    else:
        assert targets.sum(0).eq(1).all()  # every token exactly once, as in causal
        assert torch.equal(targets[0].bool(), suffix) and torch.equal(targets[1].bool(), ~suffix)
        assert torch.equal(passes[1][0], torch.ones(12, 12, dtype=torch.bool).tril().expand(3, -1, -1))  # prefix tokens: causal pass


@pytest.mark.parametrize("objective", lm.OBJECTIVES)
def test_no_target_is_visible_where_it_is_predicted(objective):
    """Changing tokens t..T-1 leaves the logit that predicts token t unchanged, in every pass."""
    m = model()
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(11, (1, 4, 12), generator=generator)
    split = torch.tensor([2, 5, 9, 11])
    for mask, targets in lm.passes(objective, split, 12):
        logits = m(tokens, mask[None])
        for t in range(1, 12):
            changed = tokens.clone()
            changed[..., t:] = (changed[..., t:] + 1) % 11
            after = m(changed, mask[None])
            rows = targets[:, t - 1]
            assert torch.allclose(logits[0, rows, t - 1], after[0, rows, t - 1], atol=1e-6), (t, rows)


def test_prefix_tokens_see_later_prefix_tokens():
    """The prefix mask is bidirectional inside the prefix: a later prefix token changes an earlier position's logits."""
    m = model()
    tokens = torch.randint(11, (1, 1, 12), generator=torch.Generator().manual_seed(1))
    (mask, _), = lm.passes("prefix", torch.tensor([6]), 12)
    changed = tokens.clone()
    changed[..., 4] = (changed[..., 4] + 1) % 11
    assert not torch.allclose(m(tokens, mask[None])[0, 0, 1], m(changed, mask[None])[0, 0, 1])
    assert torch.allclose(m(tokens, mask[None])[0, 0, 6], m(tokens.clone(), mask[None])[0, 0, 6])


def test_loss_is_the_mean_cross_entropy_over_targets():
    m = model()
    tokens = torch.randint(11, (1, 3, 12), generator=torch.Generator().manual_seed(2))
    split = torch.tensor([3, 6, 8])
    (mask, targets), = lm.passes("prefix", split, 12)
    logits = m(tokens, mask[None])[0]
    expected = []
    for b in range(3):
        for t in range(split[b], 12):
            expected.append(torch.nn.functional.cross_entropy(logits[b, t - 1], tokens[0, b, t]))
    got = lm.loss(m, tokens, [(mask[None], targets[None])])
    assert got.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)


def test_stacked_models_are_independent():
    """Model k of a stack computes what it computes alone: same seed, same logits."""
    alone, stacked = model(1, [7]), model(2, [3, 7])
    tokens = torch.randint(11, (2, 2, 12), generator=torch.Generator().manual_seed(3))
    mask = torch.ones(12, 12, dtype=torch.bool).tril().expand(2, 2, -1, -1)
    assert torch.allclose(stacked(tokens, mask)[1], alone(tokens[1:], mask[1:])[0], atol=1e-5)


def test_attention_takes_a_mask_per_sequence():
    config = models.ModelConfig(width=8, heads=2, variant="standard")
    attention = models.SelfAttention(2, config)
    models.initialise(attention, [0, 1])
    h = torch.randn(2, 3, 5, 8)
    per_model = torch.rand(2, 5, 5) > 0.5
    per_model |= torch.eye(5, dtype=torch.bool)
    per_sequence = per_model[:, None].expand(-1, 3, -1, -1).clone()
    assert torch.allclose(attention(h, per_model), attention(h, per_sequence), atol=1e-6)
    per_sequence[:, 1] = torch.eye(5, dtype=torch.bool)  # sequence 1 sees itself only
    out = attention(h, per_sequence)
    assert torch.allclose(out[:, 0], attention(h, per_model)[:, 0], atol=1e-6)
    assert not torch.allclose(out[:, 1], attention(h, per_model)[:, 1], atol=1e-4)


def test_with_one_layer_prefix_full_is_the_causal_objective():
    """A suffix position and the last prefix position see the same tokens under both masks, and one layer reads
    nothing else, so prefix_full's targets and logits are causal's: the same loss. With two layers they differ."""
    tokens = torch.randint(11, (1, 5, 12), generator=torch.Generator().manual_seed(4))
    split = torch.tensor([1, 3, 6, 9, 11])
    losses = {}
    for n_layers in (1, 2):
        m = lm.LanguageModel(1, lm.LMConfig(vocab_size=11, context=12, n_layers=n_layers, width=16, heads=2, ffn_width=32))
        lm.initialise(m, [0])
        with torch.no_grad():
            for parameter in m.parameters():
                parameter.mul_(20)  # far from uniform attention, so that what a position sees matters
        for objective in ("causal", "prefix_full"):
            losses[n_layers, objective] = lm.loss(m, tokens, [(mask[None], t[None]) for mask, t in lm.passes(objective, split, 12)]).item()
    assert losses[1, "prefix_full"] == pytest.approx(losses[1, "causal"], rel=1e-6)
    assert abs(losses[2, "prefix_full"] - losses[2, "causal"]) > 1e-3
