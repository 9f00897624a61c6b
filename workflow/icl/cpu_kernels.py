"""Fused CPU kernels of the released model: its attention, tanh GELU (with the fc layer's bias) and
per-model LayerNorm, and of the AdamW step.

At the default size a model's tensors are tiny (15 positions, heads of 8 features), and eager
PyTorch spends a training step in per-op overhead: hundreds of BLAS calls on 15 x 8 matrices, and
elementwise ops that each pass over memory once. cpu_kernels.c does each of these layers' forward
and backward passes in one C call, with one SIMD lane per sequence head in the attention; and the
released block is one autograd node (ReleasedBlock), which calls them and the block's matmuls.

The C source is compiled on first use with the system's C compiler (CC, else cc) into a cache
shared by every job (ICL_KERNEL_CACHE, default ~/.cache/icl/kernels), named by a hash of the
source, the flags, the compiler and the CPU (-march=native code must not run on another kind of
CPU, as on a cluster whose nodes share a home directory), and loaded with ctypes. Where no compiler works, the models use
their PyTorch code, with a warning: the same function, rounded differently.

The kernels' results for a sequence never depend on the others in its tensor, so a model trained in
a group still matches the same model trained alone (tests/test_training.py), and a rerun on the
same machine reproduces bit for bit.
"""

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("cpu_kernels.c")
HEADER = Path(__file__).with_name("cpu_kernels_typed.h")
# No fused multiply-adds, so that the arithmetic is what is written; no errno from sqrt, so that it vectorises
# (it is correctly rounded either way).
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC"]
VECTOR_BYTES = 32  # cpu_kernels.c's vector size
MODES = ("auto", "off")  # execution.cpu_kernels

_mode = "auto"


def set_mode(mode: str) -> None:
    """auto: the kernels serve float32 and float64 tensors on a CPU where they build; off: never."""
    if mode not in MODES:
        raise ValueError(f"cpu kernels mode {mode!r} is not one of {MODES}")
    global _mode
    _mode = mode


@contextlib.contextmanager
def using(mode: str):
    """set_mode(mode) for the length of a with block."""
    previous = _mode
    set_mode(mode)
    try:
        yield
    finally:
        set_mode(previous)


def cache_directory() -> Path:
    return Path(os.environ.get("ICL_KERNEL_CACHE", Path.home() / ".cache" / "icl" / "kernels"))


def cpu_identity() -> str:
    """What -march=native compiles for: the CPU's model and feature flags (Linux), else the machine type."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    return "\n".join(dict.fromkeys(line for line in lines if line.startswith(("model name", "flags"))))


def build(compiler: str, directory: Path) -> Path:
    """The shared library compiled from the sources by `compiler`, built once per source, flags,
    compiler version and CPU. Jobs that start together take turns (a file lock), so one compiles and the
    others find its library; it is written under a temporary name and renamed, so that no job loads
    a half-written file. Raises OSError or CalledProcessError where the compiler does not work."""
    import fcntl  # POSIX; where it is missing the import error stops the build and the PyTorch code runs

    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256("\0".join([SOURCE.read_text(), HEADER.read_text(), " ".join(FLAGS), version, cpu_identity()]).encode())
    library = directory / f"cpu_kernels-{digest.hexdigest()[:16]}.so"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not library.exists():
            with tempfile.TemporaryDirectory(dir=directory) as scratch:
                partial = Path(scratch) / library.name
                subprocess.run([compiler, *FLAGS, "-o", str(partial), str(SOURCE), "-lm"], capture_output=True, text=True, check=True)
                os.replace(partial, library)
    return library


@functools.cache
def library():
    """The loaded kernels, or None (with a warning) where they cannot be built."""
    compiler = os.environ.get("CC", "cc")
    try:
        path = build(compiler, cache_directory())
    except (OSError, ImportError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or error
        warnings.warn(f"the CPU kernels could not be built with {compiler!r}, so the models use their PyTorch code: {detail}")
        return None
    loaded = ctypes.CDLL(str(path))
    pointer, size = ctypes.c_void_p, ctypes.c_long
    for suffix, real in (("float", ctypes.c_float), ("double", ctypes.c_double)):
        for name, arguments in {
            "attention_forward": [pointer] * 4 + [size] * 6 + [ctypes.c_int],
            "attention_backward": [pointer] * 4 + [size] * 6 + [ctypes.c_int],
            "bias_gelu_forward": [pointer] * 4 + [size] * 3,
            "bias_gelu_backward": [pointer] * 6 + [size] * 3,
            "layer_norm_forward": [pointer] * 6 + [size] * 3 + [real],
            "layer_norm_backward": [pointer] * 8 + [size] * 3,
            "adamw_step": [size] + [pointer] * 6 + [ctypes.c_double] * 5,
        }.items():
            function = getattr(loaded, f"{name}_{suffix}")
            function.argtypes = arguments
            function.restype = ctypes.c_int if name.startswith("attention") else None
    return loaded


def applies(x: torch.Tensor) -> bool:
    """Whether the kernels compute for x: a float32 or float64 CPU tensor, outside torch.compile and
    autocast (whose matmuls give bfloat16), with the kernels on and built."""
    return (
        _mode == "auto"
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not torch.compiler.is_compiling()
        and not torch.is_autocast_enabled("cpu")
        and library() is not None
    )


def lanes(x: torch.Tensor) -> int:
    """Values of x's dtype in one of the kernels' vectors."""
    return VECTOR_BYTES // x.element_size()


def layer_norm_applies(x: torch.Tensor) -> bool:
    """Whether the LayerNorm kernel computes for x: the kernels apply and its rows are whole vectors."""
    return applies(x) and x.shape[-1] % lanes(x) == 0


def _kernel(name: str, x: torch.Tensor):
    suffix = {torch.float32: "float", torch.float64: "double"}.get(x.dtype)
    if suffix is None or x.device.type != "cpu":
        raise TypeError(f"the CPU kernels take float32 and float64 CPU tensors, not {x.dtype} on {x.device}")
    return getattr(library(), f"{name}_{suffix}")


def _call_attention(name: str, x: torch.Tensor, *arguments) -> None:
    if _kernel(name, x)(*arguments):
        raise MemoryError(f"the CPU kernel {name} could not allocate its scratch memory")


class Attention(torch.autograd.Function):
    """y [K, B, T - start, H W] from the qkv projection [K, B, T, 3 H W] (q, k, v, each H heads of
    W): softmax attention of the query positions start.. to every position that the mask [K, T, T]
    lets them see, with the RBF or the dot-product logit of ReleasedSelfAttention."""

    @staticmethod
    def forward(ctx, qkv, mask, start: int, heads: int, rbf: bool):
        qkv = qkv.contiguous()
        models, batch, positions, features = qkv.shape
        width, queries = features // (3 * heads), positions - start
        visible = mask[:, start:].to(torch.uint8).contiguous()
        y = qkv.new_empty(models, batch, queries, heads * width)
        groups = -(-models * batch * heads // lanes(qkv))
        probabilities = qkv.new_empty(groups * lanes(qkv) * queries * positions)
        ctx.sizes = (models, batch, positions, start, heads, width, int(rbf))
        _call_attention("attention_forward", qkv, qkv.data_ptr(), visible.data_ptr(), y.data_ptr(), probabilities.data_ptr(), *ctx.sizes)
        ctx.save_for_backward(qkv, probabilities)
        return y

    @staticmethod
    def backward(ctx, dy):
        qkv, probabilities = ctx.saved_tensors
        dy, dqkv = dy.contiguous(), torch.empty_like(qkv)
        _call_attention("attention_backward", qkv, qkv.data_ptr(), probabilities.data_ptr(), dy.data_ptr(), dqkv.data_ptr(), *ctx.sizes)
        return dqkv, None, None, None, None


class BiasTanhGELU(torch.autograd.Function):
    """GELU's tanh approximation of a [K, rows, F] plus model k's bias [K, 1, F]; the sigmoid it
    computes is kept for the backward pass."""

    @staticmethod
    def forward(ctx, a, bias):
        a, bias = a.contiguous(), bias.contiguous()
        y, sigmoid = torch.empty_like(a), torch.empty_like(a)
        ctx.sizes = (a.shape[0], a.numel() // (a.shape[0] * a.shape[-1]), a.shape[-1])
        _kernel("bias_gelu_forward", a)(a.data_ptr(), bias.data_ptr(), y.data_ptr(), sigmoid.data_ptr(), *ctx.sizes)
        ctx.save_for_backward(a, bias, sigmoid)
        return y

    @staticmethod
    def backward(ctx, grad):
        a, bias, sigmoid = ctx.saved_tensors
        grad, da, dbias = grad.contiguous(), torch.empty_like(a), torch.empty_like(bias)
        _kernel("bias_gelu_backward", a)(
            a.data_ptr(), bias.data_ptr(), sigmoid.data_ptr(), grad.data_ptr(), da.data_ptr(), dbias.data_ptr(), *ctx.sizes
        )
        return da, dbias


class LayerNorm(torch.autograd.Function):
    """LayerNorm over the last dimension of x [K, ..., W], then model k's scale and shift ([K, ..., W],
    one row each); W must be a multiple of lanes(x)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        if not x.dtype == weight.dtype == bias.dtype:
            raise TypeError(f"LayerNorm of {x.dtype} values with {weight.dtype} and {bias.dtype} parameters")
        x, weight, bias = x.contiguous(), weight.contiguous(), bias.contiguous()
        models, width = x.shape[0], x.shape[-1]
        rows = x.numel() // (models * width)
        y, mean, rstd = torch.empty_like(x), x.new_empty(models * rows), x.new_empty(models * rows)
        ctx.sizes = (models, rows, width)
        _kernel("layer_norm_forward", x)(
            x.data_ptr(), weight.data_ptr(), bias.data_ptr(), y.data_ptr(), mean.data_ptr(), rstd.data_ptr(), *ctx.sizes, eps
        )
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, rstd = ctx.saved_tensors
        grad, dx = grad.contiguous(), torch.empty_like(x)
        dweight, dbias = torch.empty_like(weight), torch.empty_like(weight)
        _kernel("layer_norm_backward", x)(
            x.data_ptr(), weight.data_ptr(), mean.data_ptr(), rstd.data_ptr(), grad.data_ptr(),
            dx.data_ptr(), dweight.data_ptr(), dbias.data_ptr(), *ctx.sizes,
        )
        return dx, dweight, dbias, None


class _Saved:
    """Autograd's context, for a kernel's Function run inside another Function."""

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


class ReleasedBlock(torch.autograd.Function):
    """The released model's block (models.ReleasedBlock.layer_by_layer) as one autograd node.

    Its passes call the kernels above and ATen's matmuls and sums in the layouts that autograd gives
    them layer by layer, and sum each gradient's contributions as it does, so the numbers are the same
    to the bit. What goes is eager PyTorch's overhead per module, op and graph node, a large part of
    a step at the default size. `parameters`: the block's weight and bias of its first LayerNorm, qkv,
    out, second LayerNorm, fc and proj, in that order.
    """

    @staticmethod
    def forward(ctx, h, mask, start: int, heads: int, rbf: bool, eps: float, *parameters):
        (ln1_weight, ln1_bias, qkv_weight, qkv_bias, out_weight, out_bias,
         ln2_weight, ln2_bias, fc_weight, fc_bias, proj_weight, proj_bias) = parameters
        k, b, positions, width = h.shape
        queries = positions - start
        ln1, attn, ln2, gelu = _Saved(), _Saved(), _Saved(), _Saved()
        a = LayerNorm.forward(ln1, h, ln1_weight, ln1_bias, eps).view(k, -1, width)
        y = Attention.forward(attn, torch.baddbmm(qkv_bias, a, qkv_weight).view(k, b, positions, -1), mask, start, heads, rbf)
        y = y.view(k, -1, y.shape[-1])
        residual = a.view(k, b, positions, width)[:, :, start:] + torch.baddbmm(out_bias, y, out_weight).view(k, b, queries, width)
        c = LayerNorm.forward(ln2, residual, ln2_weight, ln2_bias, eps).view(k, -1, width)
        g = BiasTanhGELU.forward(gelu, torch.bmm(c, fc_weight), fc_bias)
        ctx.kernels, ctx.activations, ctx.start = (ln1, attn, ln2, gelu), (a, y, c, g), start
        ctx.save_for_backward(qkv_weight, out_weight, fc_weight, proj_weight)
        return c.view(k, b, queries, width) + torch.baddbmm(proj_bias, g, proj_weight).view(k, b, queries, width)

    @staticmethod
    def backward(ctx, grad):
        # A linear map x W + bias passes back grad W^T, takes x^T grad, and its bias the sum over the rows
        # it was broadcast to (autograd's sum_to).
        qkv_weight, out_weight, fc_weight, proj_weight = ctx.saved_tensors
        ln1, attn, ln2, gelu = ctx.kernels
        a, y, c, g = ctx.activations
        k, b, queries, width = grad.shape
        positions = queries + ctx.start
        d_proj = grad.reshape(k, -1, width)
        proj_weight_grad, proj_bias_grad = g.transpose(1, 2).bmm(d_proj), d_proj.sum([1], keepdim=True)
        d_fc, fc_bias_grad = BiasTanhGELU.backward(gelu, d_proj.bmm(proj_weight.transpose(1, 2)))
        fc_weight_grad = c.transpose(1, 2).bmm(d_fc)
        d_c = grad + d_fc.bmm(fc_weight.transpose(1, 2)).reshape(k, b, queries, width)  # the residual's and the MLP's
        d_residual, ln2_weight_grad, ln2_bias_grad, _ = LayerNorm.backward(ln2, d_c)
        d_out = d_residual.reshape(k, -1, width)
        out_weight_grad, out_bias_grad = y.transpose(1, 2).bmm(d_out), d_out.sum([1], keepdim=True)
        d_y = d_out.bmm(out_weight.transpose(1, 2)).reshape(k, b, queries, -1)
        d_qkv = Attention.backward(attn, d_y)[0].reshape(k, b * positions, -1)
        qkv_weight_grad, qkv_bias_grad = a.transpose(1, 2).bmm(d_qkv), d_qkv.sum([1], keepdim=True)
        d_a = d_qkv.bmm(qkv_weight.transpose(1, 2)).reshape(k, b, positions, width)
        if ctx.start:  # the residual read a's positions from start on; autograd pads their gradient with zeros
            d_residual = torch.zeros_like(d_a).slice_scatter(d_residual, dim=2, start=ctx.start)
        d_h, ln1_weight_grad, ln1_bias_grad, _ = LayerNorm.backward(ln1, d_residual + d_a)
        return (
            d_h, None, None, None, None, None, ln1_weight_grad, ln1_bias_grad, qkv_weight_grad, qkv_bias_grad,
            out_weight_grad, out_bias_grad, ln2_weight_grad, ln2_bias_grad, fc_weight_grad, fc_bias_grad, proj_weight_grad, proj_bias_grad,
        )


def attention(qkv, mask, start: int, heads: int, rbf: bool):
    return Attention.apply(qkv, mask, start, heads, rbf)


def bias_tanh_gelu(a, bias):
    return BiasTanhGELU.apply(a, bias)


def layer_norm(x, weight, bias, eps: float):
    return LayerNorm.apply(x, weight, bias, eps)


def released_block(h, mask, start: int, heads: int, rbf: bool, eps: float, parameters):
    return ReleasedBlock.apply(h, mask, start, heads, rbf, eps, *parameters)


class AdamW(torch.optim.AdamW):
    """torch.optim.AdamW whose step, where the kernels apply, is one C call for all parameters: the
    same update, state and checkpoints, without the multi-tensor step's dozen passes over the
    parameters. Elsewhere (off, no compiler, not a CPU) it is torch's step."""

    @torch.no_grad()
    def step(self, closure=None):
        groups = self.param_groups
        if closure is not None or not all(self._kernel_applies(group) for group in groups):
            return super().step(closure)
        for group in groups:
            parameters = [p for p in group["params"] if p.grad is not None]
            if not parameters:
                continue
            states = [self._state(p) for p in parameters]
            grads = [p.grad.contiguous() for p in parameters]  # kept alive through the call
            arrays = [
                (ctypes.c_void_p * len(parameters))(*(t.data_ptr() for t in tensors))
                for tensors in (
                    parameters, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                    [s["step"] for s in states],
                )
            ]
            beta1, beta2 = group["betas"]
            _kernel("adamw_step", parameters[0])(
                len(parameters), *arrays, (ctypes.c_long * len(parameters))(*(p.numel() for p in parameters)),
                float(group["lr"]), float(beta1), float(beta2), float(group["eps"]), float(group["weight_decay"]),
            )
        return None

    def _state(self, parameter) -> dict:
        state = self.state[parameter]
        if not state:  # as torch.optim.AdamW keeps it, so that checkpoints are the same
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
        return state

    def _kernel_applies(self, group) -> bool:
        """Plain AdamW, on contiguous parameters that the kernels take, with gradients and moments of
        their dtype and float32 step counts (torch's, unless a checkpoint says otherwise)."""
        plain = not (group["amsgrad"] or group["maximize"] or group["capturable"] or group["differentiable"])
        params = group["params"]
        if not (plain and params and applies(params[0])):
            return False
        dtype = params[0].dtype
        for p in params:
            state = self.state.get(p)
            if not (
                p.device.type == "cpu" and p.dtype == dtype and p.is_contiguous()
                and (p.grad is None or p.grad.dtype == dtype)
                and (not state or (state["step"].dtype == torch.float32 and state["step"].device.type == "cpu"
                                   and state["exp_avg"].is_contiguous() and state["exp_avg_sq"].is_contiguous()))
            ):
                return False
        return True
