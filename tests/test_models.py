"""The trained models of Sec. 5.2, written as a stack of K independent models.

What the paper's comparison rests on: the only difference between prefixLM and causalLM is the
attention mask, so the mask must be the one thing that decides what each output may depend on
(causal: ICE j sees ICEs 1..j; prefix: every ICE sees every ICE; a query sees every ICE and no
other query). And since many models are trained side by side, model k of a stack must compute
exactly what it would compute alone.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from icl import masks, models

F64 = torch.float64
N, Q, D, OUT = 6, 3, 3, 1  # ICEs, queries, x dims, label dims
T = N + Q




def config(model="softmax", attention="dot", shared=True, n_layers=2, width=16, heads=2, n_positions=T):
    return models.ModelConfig(
        model=model, n_layers=n_layers, width=width, heads=heads, ffn_width=32, attention=attention,
        shared=shared, input_dim=OUT + D, output_dim=OUT, n_positions=n_positions,
    )


def model_of(cfg, seeds):
    model = models.build(len(seeds), cfg)
    models.initialise(model, seeds)
    return model.double().eval()


def prompt_tokens(seed, k=1, batch=4, n=N, q=Q):
    """[K, B, n + q, OUT + D] tokens: ICEs (y; x), queries (0; x)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(k, batch, n + q, OUT + D, generator=g, dtype=F64)
    tokens[..., n:, :OUT] = 0
    return tokens


def mask_stack(names, n=N, q=Q, n_visible=None):
    return torch.stack([masks.visibility(name, n, q, n_visible) for name in names])


def run(model, tokens, mask):
    with torch.no_grad():
        return model(tokens, mask)


# Every model family whose dependence structure is tested: the softmax transformer with both
# logits, shared (SL) and unshared (UL) layers, and the linear transformer (LSA).
FAMILIES = [
    pytest.param(dict(model="softmax", attention="dot", shared=True), id="softmax-dot-SL"),
    pytest.param(dict(model="softmax", attention="dot", shared=False), id="softmax-dot-UL"),
    pytest.param(dict(model="softmax", attention="rbf", shared=True), id="softmax-rbf-SL"),
    pytest.param(dict(model="softmax", attention="rbf", shared=False), id="softmax-rbf-UL"),
    pytest.param(dict(model="lsa", shared=True), id="lsa-SL"),
    pytest.param(dict(model="lsa", shared=False), id="lsa-UL"),
]

CHANGED = 1e-9  # in float64, "changed" means by far more than rounding
SAME = dict(rtol=0, atol=1e-12)


def max_change(a, b):
    return (a - b).abs().max().item()


# --- the stacked building blocks ---


def test_stacked_linear_is_k_separate_affine_maps():
    torch.manual_seed(0)
    layer = models.StackedLinear(3, 5, 7).double()
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.normal_()
    x = torch.randn(3, 4, 6, 5, dtype=F64)
    out = layer(x)
    assert out.shape == (3, 4, 6, 7)
    for k in range(3):
        expected = x[k] @ layer.weight[k] + layer.bias[k, 0]
        torch.testing.assert_close(out[k], expected, rtol=1e-12, atol=1e-12)
    # model k uses its own weights only: another model's weights change nothing in slice k
    with torch.no_grad():
        layer.weight[1].add_(1.0)
    torch.testing.assert_close(layer(x)[[0, 2]], out[[0, 2]], rtol=0, atol=0)
    assert max_change(layer(x)[1], out[1]) > 1e-3


def test_stacked_layer_norm_is_layer_norm_per_model():
    torch.manual_seed(1)
    norm = models.StackedLayerNorm(3, 8).double()
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = 3.0 + 2.0 * torch.randn(3, 4, 5, 8, dtype=F64)
    out = norm(x)
    for k in range(3):
        expected = F.layer_norm(x[k], (8,), norm.weight[k].flatten(), norm.bias[k].flatten())
        torch.testing.assert_close(out[k], expected, rtol=1e-12, atol=1e-12)


# --- the masks through the model ---


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("j", [0, 2, N - 2])
def test_causal_ice_outputs_ignore_later_ices_prefix_ones_do_not(family, j):
    """Model 0 is causal, model 1 prefix, in the same stack: changing ICEs j+1..n-1 leaves the causal
    model's outputs (and every probe's) at ICEs 0..j unchanged and changes the prefix model's."""
    model = model_of(config(**family), seeds=[11, 11])  # the same weights: only the mask differs
    mask = mask_stack(["causal", "prefix"])
    tokens = prompt_tokens(0, k=2)
    changed = tokens.clone()
    changed[:, :, j + 1 : N] += torch.randn(changed[:, :, j + 1 : N].shape, generator=torch.Generator().manual_seed(5), dtype=F64)

    out, probes = run(model, tokens, mask)
    out2, probes2 = run(model, changed, mask)
    early = slice(0, j + 1)
    # causal: ICE j sees ICEs 0..j only
    torch.testing.assert_close(out2[0, :, early], out[0, :, early], **SAME)
    torch.testing.assert_close(probes2[:, 0, :, early], probes[:, 0, :, early], **SAME)
    # prefix: every ICE sees every ICE, so the early outputs move
    assert max_change(out2[1, :, early], out[1, :, early]) > CHANGED
    for layer in range(probes.shape[0]):
        assert max_change(probes2[layer, 1, :, early], probes[layer, 1, :, early]) > CHANGED
    # and the queries see every ICE under both masks
    for k in range(2):
        assert max_change(out2[k, :, N:], out[k, :, N:]) > CHANGED


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mask_name", ["prefix", "causal"])
def test_queries_are_independent_of_each_other_and_no_ice_sees_a_query(family, mask_name):
    model = model_of(config(**family), seeds=[3])
    mask = mask_stack([mask_name])
    tokens = prompt_tokens(1)
    out, probes = run(model, tokens, mask)
    for query in range(N, T):
        changed = tokens.clone()
        changed[..., query, OUT:] += 1.0  # the query's x
        out2, probes2 = run(model, changed, mask)
        others = [p for p in range(T) if p != query]  # every ICE and every other query
        torch.testing.assert_close(out2[..., others, :], out[..., others, :], **SAME)
        torch.testing.assert_close(probes2[..., others, :], probes[..., others, :], **SAME)
        assert max_change(out2[..., query, :], out[..., query, :]) > CHANGED

    # all queries at once: still nothing at an ICE position moves
    changed = tokens.clone()
    changed[..., N:, OUT:] = torch.randn(changed[..., N:, OUT:].shape, generator=torch.Generator().manual_seed(2), dtype=F64)
    out2, probes2 = run(model, changed, mask)
    torch.testing.assert_close(out2[..., :N, :], out[..., :N, :], **SAME)
    torch.testing.assert_close(probes2[..., :N, :], probes[..., :N, :], **SAME)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mask_name", ["prefix", "causal"])
def test_a_shortened_prompt_ignores_the_hidden_ices(family, mask_name):
    """n_visible = m hides ICEs m..n-1: whatever they hold, the visible ICEs' and the queries' outputs
    are those of the prompt with any other values there."""
    m = 3
    model = model_of(config(**family), seeds=[4])
    mask = mask_stack([mask_name], n_visible=m)
    tokens = prompt_tokens(2)
    changed = tokens.clone()
    changed[..., m:N, :] = 100.0 * torch.randn(changed[..., m:N, :].shape, generator=torch.Generator().manual_seed(9), dtype=F64)
    out, probes = run(model, tokens, mask)
    out2, probes2 = run(model, changed, mask)
    kept = list(range(m)) + list(range(N, T))
    torch.testing.assert_close(out2[..., kept, :], out[..., kept, :], **SAME)
    torch.testing.assert_close(probes2[..., kept, :], probes[..., kept, :], **SAME)
    # hiding really hides something: with the full mask those ICEs do matter to the queries
    full = mask_stack([mask_name])
    assert max_change(run(model, changed, full)[0][..., N:, :], run(model, tokens, full)[0][..., N:, :]) > CHANGED


@pytest.mark.parametrize("mask_name", ["prefix", "causal"])
def test_a_shortened_prompt_through_lsa_is_a_prompt_of_m_ices(mask_name):
    """The linear transformer has no positions, so hiding ICEs m..n-1 is the same as a prompt of m ICEs."""
    m = 4
    model = model_of(config(model="lsa", shared=False, n_layers=3), seeds=[8])
    tokens = prompt_tokens(3)
    out, probes = run(model, tokens, mask_stack([mask_name], n_visible=m))
    short = torch.cat([tokens[..., :m, :], tokens[..., N:, :]], dim=-2)
    out_short, probes_short = run(model, short, mask_stack([mask_name], n=m))
    kept = list(range(m)) + list(range(N, T))
    torch.testing.assert_close(out[..., kept, :], out_short, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(probes[..., kept, :], probes_short, rtol=1e-12, atol=1e-12)


# --- the RBF logit ---


def random_attention(attention, width=8, heads=2):
    module = models.SelfAttention(1, config(attention=attention, width=width, heads=heads)).double()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=F64))
    return module


def attention_by_hand(module, h, mask, logit):
    """Multi-head attention written out: per head, softmax over the visible keys of logit(q_j, k_i, d_h)."""
    heads = module.heads
    _, batch, t, width = h.shape
    d_h = width // heads
    qkv = h[0] @ module.qkv.weight[0] + module.qkv.bias[0, 0]  # [B, T, 3 * width]: q, k, v, each split into heads
    q, k, v = qkv.view(batch, t, 3, heads, d_h).unbind(2)  # [B, T, heads, d_h] each
    heads_out = []
    for head in range(heads):
        qh, kh, vh = q[:, :, head], k[:, :, head], v[:, :, head]
        logits = logit(qh[:, :, None, :], kh[:, None, :, :], d_h)  # [B, j, i]
        logits = logits.masked_fill(~mask[0], -math.inf)
        heads_out.append(torch.softmax(logits, dim=-1) @ vh)
    return torch.cat(heads_out, dim=-1) @ module.out.weight[0] + module.out.bias[0, 0]


def rbf_logit(q, k, d_h):
    return -0.5 * ((q / math.sqrt(d_h) - k) ** 2).sum(-1)


def dot_logit(q, k, d_h):
    return (q * k).sum(-1) / math.sqrt(d_h)


@pytest.mark.parametrize("mask_name", ["prefix", "causal"])
@pytest.mark.parametrize(
    "attention_logit, logit, other_logit",
    [("rbf", rbf_logit, dot_logit), ("dot", dot_logit, rbf_logit)],
    ids=["rbf", "dot"],
)
def test_attention_is_softmax_of_its_logit(mask_name, attention_logit, logit, other_logit):
    """rbf, the released code's logit: softmax_i(-1/2 ||q_j / sqrt(d_h) - k_i||^2) over the visible i;
    dot: softmax_i(q_j . k_i / sqrt(d_h)). Each differs from the other."""
    attention = random_attention(attention_logit)
    h = torch.randn(1, 2, T, 8, generator=torch.Generator().manual_seed(1), dtype=F64)
    mask = mask_stack([mask_name])
    with torch.no_grad():
        got = attention(h, mask)
        torch.testing.assert_close(got[0], attention_by_hand(attention, h, mask, logit), rtol=1e-10, atol=1e-10)
        assert max_change(got[0], attention_by_hand(attention, h, mask, other_logit)) > 1e-3


# --- K stacked models are K models ---


@pytest.mark.parametrize("family", FAMILIES)
def test_a_stack_of_k_models_is_k_models_alone(family):
    seeds = [101, 202, 303]
    cfg = config(**family)
    stacked = model_of(cfg, seeds)
    alone = [model_of(cfg, [seed]) for seed in seeds]

    # initial weights: model k's slice is what it gets alone, from its own seed
    for name, parameter in stacked.state_dict().items():
        for k, single in enumerate(alone):
            torch.testing.assert_close(parameter[k : k + 1], single.state_dict()[name], rtol=0, atol=0)
    differs = [max_change(p[0], p[1]) > 0 for p in stacked.parameters()]
    assert any(differs), "different seeds must give different initial weights"

    mask_names = ["prefix", "causal", "prefix"]
    tokens = prompt_tokens(4, k=3)
    out, probes = run(stacked, tokens, mask_stack(mask_names))
    for k, single in enumerate(alone):
        out_k, probes_k = run(single, tokens[k : k + 1], mask_stack([mask_names[k]]))
        torch.testing.assert_close(out[k : k + 1], out_k, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(probes[:, k : k + 1], probes_k, rtol=1e-12, atol=1e-12)
    assert max_change(out[0], out[2]) > CHANGED  # same mask, different seeds: different models


def test_output_shapes():
    for family, n_layers in ((dict(model="softmax", shared=False), 3), (dict(model="lsa"), 2)):
        model = model_of(config(**family, n_layers=n_layers), seeds=[1, 2])
        out, probes = run(model, prompt_tokens(0, k=2), mask_stack(["prefix", "causal"]))
        assert out.shape == (2, 4, T, OUT)
        assert probes.shape == (n_layers, 2, 4, T, OUT)
        assert torch.isfinite(out).all() and torch.isfinite(probes).all()


def test_probes_are_trained_on_stop_gradient_hidden_states():
    """Fig. 3's probes read the layers without changing them: a probe loss gives the backbone no gradient."""
    model = models.build(1, config(shared=False))
    models.initialise(model, [0])
    _, probes = model(prompt_tokens(0).float(), mask_stack(["prefix"]))
    probes.pow(2).sum().backward()
    for name, parameter in model.named_parameters():
        if name.startswith("probes."):
            continue
        assert parameter.grad is None or not parameter.grad.any(), name
    assert any(p.grad is not None and p.grad.any() for n, p in model.named_parameters() if n.startswith("probes."))
