"""The trained models of Sec. 5.2, written as a stack of K independent models.

What the paper's comparison rests on: the only difference between prefixLM and causalLM is the
attention mask, so the mask must be the one thing that decides what each output may depend on
(causal: ICE j sees ICEs 1..j; prefix: every ICE sees every ICE; a query sees every ICE and no
other query). And since many models are trained side by side, model k of a stack must compute
exactly what it would compute alone.
"""

import math
import re

import pytest
import torch
import torch.nn.functional as F

from icl import cpu_kernels, masks, models

F64 = torch.float64
N, Q, D, OUT = 6, 3, 3, 1  # ICEs, queries, x dims, label dims
T = N + Q




def config(model="softmax", attention="dot", shared=True, n_layers=2, width=16, heads=2, n_positions=T, variant="standard", ffn_width=32):
    return models.ModelConfig(
        model=model, n_layers=n_layers, width=width, heads=heads, ffn_width=ffn_width, attention=attention,
        shared=shared, input_dim=OUT + D, output_dim=OUT, n_positions=n_positions, variant=variant,
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


# Every model family whose dependence structure is tested: both softmax transformers (released and
# standard) with both logits, shared (SL) and unshared (UL) layers, and the linear transformer (LSA).
FAMILIES = [
    pytest.param(dict(model="softmax", variant=variant, attention=attention, shared=shared), id=f"softmax-{variant}-{attention}-{layers}")
    for variant in ("released", "standard")
    for attention in ("dot", "rbf")
    for shared, layers in ((True, "SL"), (False, "UL"))
] + [
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
    families = (dict(model="softmax", shared=False), dict(model="softmax", variant="released"), dict(model="lsa"))
    for family, n_layers in zip(families, (3, 2, 2)):
        model = model_of(config(**family, n_layers=n_layers), seeds=[1, 2])
        out, probes = run(model, prompt_tokens(0, k=2), mask_stack(["prefix", "causal"]))
        assert out.shape == (2, 4, T, OUT)
        assert probes.shape == (n_layers, 2, 4, T, OUT)
        assert torch.isfinite(out).all() and torch.isfinite(probes).all()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("start", [N, N + 1])
def test_outputs_from_a_start_position_are_those_of_the_whole_prompt(family, start):
    """Training without an ICE term and evaluation read only the queries: forward(..., start) gives
    the outputs and probes of positions start.. exactly as the whole prompt's forward pass does, and
    so the same gradients, while a softmax model's last layer computes only those positions."""
    cfg = config(**family, n_layers=3)
    model = model_of(cfg, [5, 6])
    tokens, mask = prompt_tokens(2, k=2), mask_stack(["prefix", "causal"])
    whole, whole_probes = model(tokens, mask)
    part, part_probes = model(tokens, mask, start)
    assert part.shape == (2, 4, T - start, OUT) and part_probes.shape == (3, 2, 4, T - start, OUT)
    torch.testing.assert_close(part, whole[:, :, start:], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(part_probes, whole_probes[:, :, :, start:], rtol=1e-12, atol=1e-12)

    def gradients(output, probes):
        model.zero_grad()
        (output.pow(2).sum() + probes.pow(2).sum()).backward(retain_graph=True)
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    expected = gradients(whole[:, :, start:], whole_probes[:, :, :, start:])
    got = gradients(part, part_probes)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-10, atol=1e-12, msg=name)

    if family["model"] == "softmax":
        rows = []
        last = model.blocks[-1].mlp
        handle = last.register_forward_hook(lambda module, inputs, output: rows.append(inputs[0].shape[2]))
        with cpu_kernels.using("off"):  # module by module (the released block's one node is the same: test_cpu_kernels.py)
            model(tokens, mask, start)
        handle.remove()
        assert rows[-1] == T - start  # the last application of the last block saw only the outputs' positions


@pytest.mark.parametrize("variant, attention", [("released", "rbf"), ("standard", "dot")])
def test_training_flops_count_the_matmuls_of_a_training_step(variant, attention):
    """shapes.training_flops (the benchmarks' GFLOP/s, the order of training jobs) against torch's count
    of one forward and backward pass, over every position and over the queries' outputs alone (with the
    PyTorch code, whose matmuls torch can count)."""
    from torch.utils.flop_counter import FlopCounterMode

    from icl import shapes

    cfg = config(variant=variant, attention=attention, n_layers=3, width=32, ffn_width=64)
    model = models.build(1, cfg)
    models.initialise(model, [0])
    tokens, mask = prompt_tokens(0, batch=8).float(), mask_stack(["prefix"])
    for start, outputs in ((0, None), (N, Q)):
        with FlopCounterMode(display=False) as counter, cpu_kernels.using("off"):
            out, probes = model(tokens, mask, start)
            (out.pow(2).sum() + probes.pow(2).sum()).backward()
        assert shapes.training_flops(cfg, 8, outputs) == pytest.approx(counter.get_total_flops(), rel=0.01)


def test_probes_are_trained_on_stop_gradient_hidden_states():
    """Fig. 3's probes of the standard model read the layers without changing them: a probe loss gives
    the backbone no gradient."""
    model = models.build(1, config(shared=False))
    models.initialise(model, [0])
    _, probes = model(prompt_tokens(0).float(), mask_stack(["prefix"]))
    probes.pow(2).sum().backward()
    for name, parameter in model.named_parameters():
        if name.startswith("probes."):
            continue
        assert parameter.grad is None or not parameter.grad.any(), name
    assert any(p.grad is not None and p.grad.any() for n, p in model.named_parameters() if n.startswith("probes."))


# --- the released model (google-research/causallm_icl), restated from its description ---


def released(**overrides):
    return config(**{"variant": "released", **overrides})


def randomised(model, seed=0):
    """The model with every parameter moved off its initial value, so LayerNorm scales and biases matter too."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model


def released_by_hand(model, tokens, mask, k):
    """Model k of a released stack, written out with plain tensor operations and one head at a time:
    a Dense map of the tokens plus position embeddings; per layer x = LN1(x); x = x + Attn(x);
    x = LN2(x); x = x + MLP(x) and a Dense probe of x; the last probe is the prediction.
    Attention: q, k, v each of W/H features, H heads of W/H^2; q / sqrt(W/H^2), then the logit;
    masked logits are the most negative float; GELU is the tanh approximation; LayerNorm eps 1e-5."""
    cfg = model.config
    width, heads = cfg.width, cfg.heads
    features = width // heads
    head_width = features // heads
    p = {name: value[k] for name, value in model.named_parameters()}

    def dense(x, name):
        return x @ p[f"{name}.weight"] + p[f"{name}.bias"].reshape(-1)

    def layer_norm(x, name):
        mean = x.mean(-1, keepdim=True)
        variance = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(variance + 1e-5) * p[f"{name}.weight"].reshape(-1) + p[f"{name}.bias"].reshape(-1)

    def gelu_tanh(x):
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))

    x = dense(tokens[k], "embed") + p["position"].reshape(cfg.n_positions, width)
    probes = []
    for layer in range(cfg.n_layers):
        block = f"blocks.{0 if cfg.shared else layer}"
        x = layer_norm(x, f"{block}.ln_attention")
        qkv = dense(x, f"{block}.attention.qkv")
        q, key, v = qkv[..., :features], qkv[..., features : 2 * features], qkv[..., 2 * features :]
        outputs = []
        for head in range(heads):
            columns = slice(head * head_width, (head + 1) * head_width)
            qh, kh, vh = q[..., columns] / math.sqrt(head_width), key[..., columns], v[..., columns]
            if cfg.attention == "rbf":
                logits = -0.5 * ((qh[:, :, None, :] - kh[:, None, :, :]) ** 2).sum(-1)
            else:
                logits = qh @ kh.transpose(-1, -2)
            logits = torch.where(mask[k], logits, torch.finfo(logits.dtype).min)
            outputs.append(torch.softmax(logits, dim=-1) @ vh)
        x = x + dense(torch.cat(outputs, dim=-1), f"{block}.attention.out")
        x = layer_norm(x, f"{block}.ln_mlp")
        x = x + dense(gelu_tanh(dense(x, f"{block}.mlp.fc")), f"{block}.mlp.proj")
        probes.append(dense(x, f"probes.{layer}"))
    return probes[-1], torch.stack(probes)


@pytest.mark.parametrize("attention", ["rbf", "dot"])
@pytest.mark.parametrize("shared", [True, False], ids=["SL", "UL"])
def test_released_model_is_its_description(attention, shared):
    cfg = released(attention=attention, shared=shared, n_layers=3, width=32, heads=2)
    model = randomised(model_of(cfg, seeds=[5, 6]))
    tokens = prompt_tokens(7, k=2)
    mask = mask_stack(["causal", "prefix"], n_visible=4)
    out, probes = run(model, tokens, mask)
    for k in range(2):
        expected_out, expected_probes = released_by_hand(model, tokens, mask, k)
        torch.testing.assert_close(out[k], expected_out, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(probes[:, k], expected_probes, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("variant", ["released", "standard"])
def test_block_order(variant):
    """released: x = LN1(x); x = x + Attn(x); x = LN2(x); x = x + MLP(x), the LayerNorms replacing the
    residual stream. standard (pre-LN): x = x + Attn(LN1(x)); x = x + MLP(LN2(x)). They differ."""
    block = randomised(model_of(config(variant=variant), seeds=[1])).blocks[0]
    h = 2.0 + 3.0 * torch.randn(1, 2, T, 16, generator=torch.Generator().manual_seed(3), dtype=F64)
    mask = mask_stack(["causal"])
    with torch.no_grad():
        got = block(h, mask)
        if variant == "released":
            x = block.ln_attention(h)
            x = x + block.attention(x, mask)
            x = block.ln_mlp(x)
            expected = x + block.mlp(x)
            x = h + block.attention(block.ln_attention(h), mask)
            other = x + block.mlp(block.ln_mlp(x))
        else:
            x = h + block.attention(block.ln_attention(h), mask)
            expected = x + block.mlp(block.ln_mlp(x))
            x = block.ln_attention(h)
            x = x + block.attention(x, mask)
            x = block.ln_mlp(x)
            other = x + block.mlp(x)
    torch.testing.assert_close(got, expected, **SAME)
    assert max_change(got, other) > 1e-3


@pytest.mark.parametrize("shared", [True, False], ids=["SL", "UL"])
def test_released_parameter_counts_and_attention_sizes(shared):
    """q, k and v each map W to W/H features (H heads of W/H^2), the output projection W/H back to W;
    each layer has one Dense probe W -> output and no LayerNorm; there is no final LayerNorm or head."""
    width, heads, ffn, layers, k = 32, 2, 48, 3, 2
    model = models.build(k, released(width=width, heads=heads, ffn_width=ffn, n_layers=layers, shared=shared))
    features = width // heads
    attention = model.blocks[0].attention
    assert attention.qkv.weight.shape == (k, width, 3 * features)
    assert attention.out.weight.shape == (k, features, width)
    assert features // attention.heads == width // heads**2

    def count(module):
        return sum(p.numel() for p in module.parameters()) // k

    layer_norms = 2 * 2 * width
    attention_parameters = (width * 3 * features + 3 * features) + (features * width + width)
    mlp = (width * ffn + ffn) + (ffn * width + width)
    probe = width * OUT + OUT
    assert count(attention) == attention_parameters
    assert all(count(block) == layer_norms + attention_parameters + mlp for block in model.blocks)
    assert len(model.blocks) == (1 if shared else layers)
    assert [count(p) for p in model.probes] == [probe] * layers
    embedding = (OUT + D) * width + width + T * width
    assert count(model) == embedding + len(model.blocks) * (layer_norms + attention_parameters + mlp) + layers * probe
    assert not any(isinstance(m, models.StackedLayerNorm) for m in model.probes.modules())
    assert all(name.startswith(("embed.", "position", "blocks.", "probes.")) for name, _ in model.named_parameters())


def test_released_initialisation_bounds():
    """uniform_scaling: U(-b, b) with b = sqrt(1/fan_in) for kernels (the flattened inputs), sqrt(1/fan_out) for
    biases (one of q, k, v has W/H outputs), sqrt(1/T) for position embeddings; LayerNorm scale 1, bias 0."""
    width, heads, ffn, k = 32, 2, 64, 256
    model = model_of(released(width=width, heads=heads, ffn_width=ffn, n_layers=2, shared=False), seeds=list(range(k)))
    features = width // heads
    bounds = {
        "position": math.sqrt(1 / T),
        "embed.weight": math.sqrt(1 / (OUT + D)), "embed.bias": math.sqrt(1 / width),
        "attention.qkv.weight": math.sqrt(1 / width), "attention.qkv.bias": math.sqrt(1 / features),
        "attention.out.weight": math.sqrt(1 / features), "attention.out.bias": math.sqrt(1 / width),
        "mlp.fc.weight": math.sqrt(1 / width), "mlp.fc.bias": math.sqrt(1 / ffn),
        "mlp.proj.weight": math.sqrt(1 / ffn), "mlp.proj.bias": math.sqrt(1 / width),
        "probes.weight": math.sqrt(1 / width), "probes.bias": 1.0,  # a probe with one output: U(-1, 1)
    }
    seen = set()
    for name, parameter in model.named_parameters():
        kind = re.sub(r"^blocks\.\d+\.", "", re.sub(r"^probes\.\d+\.", "probes.", name))
        seen.add(kind)
        if kind.startswith("ln_"):
            assert torch.equal(parameter, torch.full_like(parameter, 1.0 if kind.endswith("weight") else 0.0)), name
            continue
        bound = bounds[kind]
        values = parameter.detach().flatten()
        assert values.abs().max() <= bound, name
        assert values.abs().max() > 0.95 * bound, name  # reaches the bound: not a smaller one
        std = values.std().item()
        assert std == pytest.approx(bound / math.sqrt(3), rel=0.1), name  # uniform, not normal
    assert seen == set(bounds) | {"ln_attention.weight", "ln_attention.bias", "ln_mlp.weight", "ln_mlp.bias"}


def test_released_attention_fills_masked_logits_with_the_most_negative_float():
    """Masked logits become finfo.min, not -inf: a position that sees one key takes its value, and a
    position that sees nothing averages every value uniformly (with -inf it would be NaN)."""
    attention = randomised(model_of(released(attention="rbf"), seeds=[2])).blocks[0].attention
    h = torch.randn(1, 2, T, 16, generator=torch.Generator().manual_seed(4), dtype=F64)
    mask = torch.zeros(1, T, T, dtype=torch.bool)
    mask[0, :, 0] = True
    mask[0, 3] = False
    with torch.no_grad():
        got = attention(h, mask)
        values = attention.qkv(h)[..., 2 * 8 :]  # v: the last W/H of q, k, v's outputs
        out = lambda v: v @ attention.out.weight[0] + attention.out.bias[0, 0]  # noqa: E731
    sees_one = [j for j in range(T) if j != 3]
    torch.testing.assert_close(got[0, :, sees_one], out(values[0, :, 0:1]).expand(-1, len(sees_one), -1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got[0, :, 3], out(values[0].mean(1)), rtol=1e-12, atol=1e-12)


def test_released_mlp_uses_the_tanh_approximation_of_gelu():
    """W -> F -> W with GELU(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); the standard MLP keeps the exact GELU."""
    h = 2.0 * torch.randn(1, 3, T, 16, generator=torch.Generator().manual_seed(5), dtype=F64)
    for variant in ("released", "standard"):
        mlp = model_of(config(variant=variant), seeds=[1]).blocks[0].mlp
        with torch.no_grad():
            hidden = h[0] @ mlp.fc.weight[0] + mlp.fc.bias[0, 0]
            tanh_gelu = 0.5 * hidden * (1 + torch.tanh(math.sqrt(2 / math.pi) * (hidden + 0.044715 * hidden**3)))
            exact_gelu = 0.5 * hidden * (1 + torch.erf(hidden / math.sqrt(2)))
            expected = (tanh_gelu if variant == "released" else exact_gelu) @ mlp.proj.weight[0] + mlp.proj.bias[0, 0]
            other = (exact_gelu if variant == "released" else tanh_gelu) @ mlp.proj.weight[0] + mlp.proj.bias[0, 0]
            got = mlp(h)[0]
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        assert max_change(got, other) > 1e-6


def test_the_sigmoid_form_of_the_tanh_gelu_is_atens_tanh_gelu_with_its_gradient():
    """x sigmoid(2u) is x (1 + tanh(u)) / 2: the same values and, by its own backward pass, the same
    gradient, checked against finite differences and against ATen's tanh GELU."""
    x = (4.0 * torch.randn(257, generator=torch.Generator().manual_seed(6), dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(models.TanhGELU.apply, (x,))
    grad = torch.randn(257, generator=torch.Generator().manual_seed(7), dtype=F64)
    ours, = torch.autograd.grad(models.TanhGELU.apply(x), x, grad)
    atens, = torch.autograd.grad(F.gelu(x, approximate="tanh"), x, grad)
    torch.testing.assert_close(models.TanhGELU.apply(x), F.gelu(x, approximate="tanh"), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(ours, atens, rtol=1e-12, atol=1e-12)


def test_released_read_out_is_the_last_probe_trained_through_the_backbone():
    """The prediction is the last layer's probe and trains every layer; the probes of layers 1..L-1 read
    stop-gradient states, so they give the backbone no gradient."""
    layers = 3
    model = models.build(1, released(shared=False, n_layers=layers))
    models.initialise(model, [0])
    out, probes = model(prompt_tokens(0).float(), mask_stack(["prefix"]))
    assert torch.equal(out, probes[-1])

    def gradients():
        found = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.any()}
        model.zero_grad(set_to_none=True)
        return found

    backbone = {name for name, _ in model.named_parameters() if not name.startswith("probes.")}
    earlier_probes = {f"probes.{layer}.{kind}" for layer in range(layers - 1) for kind in ("weight", "bias")}
    last_probe = {f"probes.{layers - 1}.weight", f"probes.{layers - 1}.bias"}

    probes[:-1].pow(2).sum().backward(retain_graph=True)
    assert gradients() == earlier_probes
    out.pow(2).sum().backward()
    assert gradients() == backbone | last_probe
