"""The fused CPU kernels against the models' PyTorch code: the same values and gradients, a unit's
result independent of its neighbours, and the PyTorch code where no compiler builds them."""

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from icl import cpu_kernels, masks, models
from icl.shapes import ModelConfig

N, Q = 6, 3  # ICEs and queries: 9 positions


@pytest.fixture(autouse=True)
def built():
    assert cpu_kernels.library() is not None, "the CPU kernels build on the test machine"


def attention_inputs(dtype, models_=3, batch=3, heads=2, attention="rbf", width=16):
    """A released attention layer with large random weights (sharp softmaxes), inputs, and a mask per
    model: prefix, causal, and one whose first query sees nothing."""
    cfg = ModelConfig(n_layers=1, width=width, heads=heads, ffn_width=16, attention=attention, n_positions=N + Q)
    layer = models.ReleasedSelfAttention(models_, cfg).to(dtype)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=dtype))
    mask = torch.stack([masks.visibility(kind, N, Q) for kind in ("prefix", "causal", "causal")][:models_])
    mask[-1, N] = False
    h = torch.randn(models_, batch, N + Q, width, generator=generator, dtype=dtype, requires_grad=True)
    return layer, h, mask


def values_and_gradients(function, inputs, grad):
    out = function()
    return [out, *torch.autograd.grad(out, inputs, grad)]


@pytest.mark.parametrize("attention", ["rbf", "dot"])
@pytest.mark.parametrize("start", [0, N])
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
@pytest.mark.parametrize("width", [16, 32])  # heads of 4 and of 8 features (in float32 a whole vector)
def test_the_attention_kernel_is_the_released_attention(attention, start, dtype, tolerance, width):
    """Outputs and every gradient (input, projections) equal the PyTorch code's, with 18 sequence heads
    (not a whole number of SIMD vectors, so that lanes of models with different masks share a
    vector), a row that sees nothing, and queries from `start`."""
    layer, h, mask = attention_inputs(dtype, attention=attention, width=width)
    inputs = [h, *layer.parameters()]
    grad = torch.randn(3, 3, N + Q - start, width, dtype=dtype)
    with cpu_kernels.using("off"):
        expected = values_and_gradients(lambda: layer(h, mask, start), inputs, grad)
    with cpu_kernels.using("auto"):
        assert cpu_kernels.applies(h)
        found = values_and_gradients(lambda: layer(h, mask, start), inputs, grad)
    for got, want in zip(found, expected):
        torch.testing.assert_close(got, want, atol=tolerance * want.abs().max().item(), rtol=tolerance)
    # the query that sees nothing averages every value, as the softmax of equal logits does
    values = layer.qkv(h)[-1, :, :, 2 * layer.features :].mean(1)
    seen_nothing = values @ layer.out.weight[-1] + layer.out.bias[-1]
    torch.testing.assert_close(found[0][-1, :, N - start], seen_nothing, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("rbf", [True, False])
def test_the_attention_kernel_passes_gradcheck(rbf):
    generator = torch.Generator().manual_seed(1)
    qkv = torch.randn(2, 3, 5, 3 * 2 * 4, generator=generator, dtype=torch.float64, requires_grad=True)
    mask = torch.stack([masks.visibility(kind, 3, 2) for kind in ("prefix", "causal")])
    for start in (0, 3):
        assert torch.autograd.gradcheck(lambda x: cpu_kernels.attention(x, mask, start, 2, rbf), (qkv,))


@pytest.mark.parametrize("features", [16, 11])  # whole vectors, and rows that end in a partial one
def test_the_gelu_kernel_is_the_tanh_gelu_of_the_biased_input(features):
    generator = torch.Generator().manual_seed(2)
    a = (3 * torch.randn(3, 7, features, generator=generator, dtype=torch.float64)).requires_grad_()
    bias = torch.randn(3, 1, features, generator=generator, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(a.shape, generator=generator, dtype=torch.float64)
    for dtype, tolerance in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        inputs = [a.detach().to(dtype).requires_grad_(), bias.detach().to(dtype).requires_grad_()]
        expected = values_and_gradients(lambda: torch.nn.functional.gelu(inputs[0] + inputs[1], approximate="tanh"), inputs, grad.to(dtype))
        found = values_and_gradients(lambda: cpu_kernels.bias_tanh_gelu(*inputs), inputs, grad.to(dtype))
        for got, want in zip(found, expected):
            torch.testing.assert_close(got, want, atol=tolerance * want.abs().max().item(), rtol=tolerance)
    assert torch.autograd.gradcheck(cpu_kernels.bias_tanh_gelu, (a[:, :2], bias))
    # far out, the sigmoid saturates rather than overflowing
    low, high = cpu_kernels.bias_tanh_gelu(torch.tensor([[[-200.0, 200.0]]]), torch.zeros(1, 1, 2)).flatten().tolist()
    assert abs(low) < 1e-30 and high == 200.0


def test_the_released_mlp_with_the_kernels_is_the_released_mlp():
    cfg = ModelConfig(n_layers=1, width=16, heads=2, ffn_width=24, attention="rbf", n_positions=N + Q)
    mlp = models.MLP(3, cfg).double()
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for parameter in mlp.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    h = torch.randn(3, 4, N + Q, 16, generator=generator, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(3, 4, N + Q, 16, generator=generator, dtype=torch.float64)
    inputs = [h, *mlp.parameters()]
    with cpu_kernels.using("off"):
        expected = values_and_gradients(lambda: mlp(h), inputs, grad)
    found = values_and_gradients(lambda: mlp(h), inputs, grad)
    for got, want in zip(found, expected):
        torch.testing.assert_close(got, want, atol=1e-12 * want.abs().max().item(), rtol=1e-10)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_the_layer_norm_kernel_is_the_stacked_layer_norm(dtype, tolerance):
    generator = torch.Generator().manual_seed(3)
    norm = models.StackedLayerNorm(3, 16).to(dtype)
    with torch.no_grad():
        for parameter in norm.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=dtype))
    x = (2 * torch.randn(3, 4, 5, 16, generator=generator, dtype=dtype) + 1).requires_grad_()
    grad = torch.randn(x.shape, generator=generator, dtype=dtype)
    inputs = [x, norm.weight, norm.bias]
    with cpu_kernels.using("off"):
        expected = values_and_gradients(lambda: norm(x), inputs, grad)
    found = values_and_gradients(lambda: norm(x), inputs, grad)
    for got, want in zip(found, expected):
        torch.testing.assert_close(got, want, atol=tolerance, rtol=tolerance)
    if dtype == torch.float64:
        small = [x[:, :2, :1].detach().requires_grad_(), norm.weight.detach().requires_grad_(), norm.bias.detach().requires_grad_()]
        assert torch.autograd.gradcheck(lambda *a: cpu_kernels.layer_norm(*a, 1e-5), small)


@pytest.mark.parametrize("attention", ["rbf", "dot"])
@pytest.mark.parametrize("start", [0, N])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("transposed", [False, True])
def test_the_released_block_as_one_node_is_the_block_layer_by_layer_to_the_bit(attention, start, dtype, transposed):
    """Its output and every gradient (input and all twelve parameters) are those of its layers' kernels
    and matmuls one by one, bit for bit: from position 0 and from the queries, with an incoming gradient
    that is contiguous or transposed (as a narrow probe's product passes it back)."""
    cfg = ModelConfig(n_layers=1, width=16, heads=2, ffn_width=24, attention=attention, n_positions=N + Q)
    block = models.ReleasedBlock(3, cfg).to(dtype)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=dtype))
    mask = torch.stack([masks.visibility(kind, N, Q) for kind in ("prefix", "causal", "causal")])
    mask[-1, N] = False  # a query that sees nothing
    h = torch.randn(3, 4, N + Q, 16, generator=generator, dtype=dtype, requires_grad=True)
    grad = torch.randn(3, 16, 4 * (N + Q - start), generator=generator, dtype=dtype).transpose(1, 2).reshape(3, 4, N + Q - start, 16)
    grad = grad if transposed else grad.contiguous()
    assert grad.is_contiguous() != transposed
    inputs = [h, *block.parameters()]
    expected = values_and_gradients(lambda: block.layer_by_layer(h, mask, start), inputs, grad)
    found = values_and_gradients(lambda: block(h, mask, start), inputs, grad)
    assert found[0].grad_fn.name() == "ReleasedBlockBackward"
    assert len(found) == 14
    for got, want in zip(found, expected):
        assert torch.equal(got, want)


def test_a_width_that_is_not_whole_vectors_takes_the_pytorch_layer_norm():
    norm = models.StackedLayerNorm(2, 12)
    x = torch.randn(2, 3, 4, 12)
    with cpu_kernels.using("off"):
        expected = norm(x)
    assert torch.equal(norm(x), expected)


def test_a_units_result_does_not_depend_on_its_neighbours():
    """Bit for bit: model 0's heads alone, and as lanes of a larger call with other models beside them."""
    layer, h, mask = attention_inputs(torch.float32, models_=3, batch=5)
    qkv = layer.qkv(h).detach().requires_grad_()
    grad = torch.randn(3, 5, N + Q, 8)  # 2 heads of 4
    together = values_and_gradients(lambda: cpu_kernels.attention(qkv, mask, 0, 2, True), [qkv], grad)
    one = qkv[:1, 1:2].detach().requires_grad_()
    alone = values_and_gradients(lambda: cpu_kernels.attention(one, mask[:1], 0, 2, True), [one], grad[:1, 1:2])
    assert torch.equal(alone[0], together[0][:1, 1:2]) and torch.equal(alone[1], together[1][:1, 1:2])
    a, bias = torch.randn(3, 7, 11), torch.randn(3, 1, 11)
    assert torch.equal(cpu_kernels.bias_tanh_gelu(a[1:2, 2:5], bias[1:2]), cpu_kernels.bias_tanh_gelu(a, bias)[1:2, 2:5])
    weights, grad = torch.randn(3, 1, 11), torch.randn(3, 1, 11)
    alone, together = torch.nn.Parameter(weights[1:2].clone()), torch.nn.Parameter(weights.clone())
    for parameter, g in ((alone, grad[1:2]), (together, grad)):
        parameter.grad = g.clone()
        cpu_kernels.AdamW([parameter], lr=0.1, weight_decay=0.1).step()
    assert torch.equal(alone[0], together[1])


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_the_adamw_kernel_steps_as_torchs_adamw(dtype, tolerance):
    """Five steps at changing learning rates, with weight decay: the same weights and moments, and a state that
    torch's AdamW takes over (the checkpoints are the same)."""
    generator = torch.Generator().manual_seed(5)
    start = [torch.randn(shape, generator=generator, dtype=dtype) for shape in ((3, 7, 5), (3, 1, 1), (3, 1, 19))]
    grads = [[torch.randn(w.shape, generator=generator, dtype=dtype) for w in start] for _ in range(5)]
    trained = {}
    for name, adamw in (("torch", torch.optim.AdamW), ("kernel", cpu_kernels.AdamW)):
        weights = [torch.nn.Parameter(w.clone()) for w in start]
        optimizer = adamw(weights, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
        for step, step_grads in enumerate(grads):
            optimizer.param_groups[0]["lr"] = 1e-2 * (step + 1) / 5
            for weight, grad in zip(weights, step_grads):
                weight.grad = grad.clone()
            optimizer.step()
        trained[name] = weights, optimizer
    (ours, kernel), (theirs, reference) = trained["kernel"], trained["torch"]
    for weight, expected in zip(ours, theirs):
        torch.testing.assert_close(weight, expected, atol=tolerance, rtol=tolerance)
        for key, value in reference.state[expected].items():
            torch.testing.assert_close(kernel.state[weight][key], value, atol=tolerance, rtol=tolerance)
    follower = torch.optim.AdamW(ours, lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    follower.load_state_dict(kernel.state_dict())
    follower.step()  # torch's step continues from the kernel's state


def test_with_the_kernels_off_the_adamw_step_is_torchs():
    weights = [torch.nn.Parameter(torch.randn(3, 9))]
    twin = [torch.nn.Parameter(weights[0].detach().clone())]
    for group, adamw in ((weights, cpu_kernels.AdamW), (twin, torch.optim.AdamW)):
        group[0].grad = torch.ones(3, 9)
        optimizer = adamw(group, lr=0.1)
        with cpu_kernels.using("off"):
            optimizer.step()
    assert torch.equal(weights[0], twin[0])


def test_the_library_is_built_once_and_kept(tmp_path):
    first = cpu_kernels.build("cc", tmp_path)
    stamp = first.stat().st_mtime_ns
    assert cpu_kernels.build("cc", tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.lock", first.name]  # no partial file left behind


def test_another_kind_of_cpu_gets_a_library_of_its_own(tmp_path, monkeypatch):
    """-march=native code is for this CPU only: a cache shared with other machines keeps one library per CPU."""
    if Path("/proc/cpuinfo").exists():
        assert "flags" in cpu_kernels.cpu_identity()  # the instruction sets the compiler may use
    here = cpu_kernels.build("cc", tmp_path)
    monkeypatch.setattr(cpu_kernels, "cpu_identity", lambda: "model name : another\nflags : sse2")
    elsewhere = cpu_kernels.build("cc", tmp_path)
    assert elsewhere != here and here.exists() and elsewhere.exists()


def test_jobs_that_start_together_build_the_library_once(tmp_path):
    """Three jobs that need the kernels at once: one compiles, and all load its library."""
    compiler, calls = tmp_path / "cc", tmp_path / "calls"
    compiler.write_text(f'#!/bin/sh\necho "$1" >> {calls}\nexec cc "$@"\n')
    compiler.chmod(0o755)
    cache = tmp_path / "cache"
    code = "import sys; from pathlib import Path; from icl import cpu_kernels; print(cpu_kernels.build(sys.argv[1], Path(sys.argv[2])))"
    jobs = [subprocess.Popen([sys.executable, "-c", code, str(compiler), str(cache)], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    built = {job.communicate()[0].strip() for job in jobs}
    assert all(job.returncode == 0 for job in jobs) and len(built) == 1
    assert sorted(p.name for p in cache.iterdir()) == sorted(["build.lock", Path(built.pop()).name])
    assert calls.read_text().split().count("--version") == 3 and len(calls.read_text().split()) == 4  # one compile


def test_without_a_compiler_the_models_use_their_pytorch_code(monkeypatch, tmp_path):
    layer, h, mask = attention_inputs(torch.float32)
    with cpu_kernels.using("off"):
        expected = layer(h, mask)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("ICL_KERNEL_CACHE", str(tmp_path / "cache"))
    cpu_kernels.library.cache_clear()
    try:
        with pytest.warns(UserWarning, match="could not be built"):
            assert not cpu_kernels.applies(h)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert torch.equal(layer(h, mask), expected)
    finally:
        cpu_kernels.library.cache_clear()


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="not one of"):
        cpu_kernels.set_mode("on")
