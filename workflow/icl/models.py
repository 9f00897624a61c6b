"""The trained models of Sec. 5.2, written for a stack of K independent models.

Every parameter has a leading model dimension K, and activations are [K, B, T, features]: one
forward pass runs K models side by side with batched matmuls, and since the models share no
parameter and the loss is a sum of per-model losses, each model's gradients are its own.
K = 1 is an ordinary single model.

- ReleasedTransformer (variant released): the model of the released code (google-research/causallm_icl)
  that produced the paper's numbers. Its blocks normalise the residual stream itself
  (x = LN(x); x = x + Attn(x); x = LN(x); x = x + MLP(x)), q, k and v have W/H features in total
  (H heads of W/H^2), the MLP's GELU is the tanh approximation, every weight starts uniform with
  a bound from its size, and each layer has a linear probe with no LayerNorm: the last layer's
  probe is the prediction, trained through the backbone, the others read stop-gradient states.
- Transformer (variant standard): pre-LN softmax blocks (x + Attn(LN(x))), full-width heads,
  learned position embeddings, an input projection, a final LayerNorm and linear read-out, and a
  LayerNorm + linear probe per layer trained on stop-gradient hidden states (Fig. 3).
- LinearTransformer: linear self-attention layers (Sec. 3) on the raw tokens, no softmax, no MLP.
  It has one form: the variant does not apply to it.

Both take the attention mask as an argument: [K, T, T] booleans from masks.visibility (the standard
blocks also take [K, B, T, T], a mask per sequence, as icl.lm's prefix LM needs).

On a CPU, the released model's attention, GELU and LayerNorms (and the standard model's LayerNorms) run as
the fused kernels of icl.cpu_kernels where those apply; the PyTorch code here computes the same function.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import cpu_kernels
from .lsa import linear_attention
from .shapes import ModelConfig

# What a config may name (the config schema's enumerations are checked against these).
MODELS = ("softmax", "lsa")
VARIANTS = ("released", "standard")
ATTENTIONS = ("dot", "rbf")
NARROW = 8  # StackedLinear's outputs below which the product is taken transposed


class StackedLinear(nn.Module):
    """K independent affine maps: [K, B, T, fan_in] -> [K, B, T, fan_out].

    `parts` > 1 fuses that many maps of fan_out / parts outputs each (q, k and v), which matters
    only to the released initialisation, whose bias bound comes from one map's outputs.
    """

    def __init__(self, models: int, fan_in: int, fan_out: int, parts: int = 1):
        super().__init__()
        self.parts = parts
        self.weight = nn.Parameter(torch.empty(models, fan_in, fan_out))
        self.bias = nn.Parameter(torch.zeros(models, 1, fan_out))

    def forward(self, x):
        k, *batch, fan_in = x.shape
        x = x.reshape(k, -1, fan_in)
        if self.weight.shape[-1] < NARROW:
            # A read-out of a few outputs (the probes): BLAS is several times faster with the outputs
            # as the rows of the product than as its columns, forward and backward.
            out = torch.baddbmm(self.bias.transpose(1, 2), self.weight.transpose(1, 2), x.transpose(1, 2)).transpose(1, 2)
        else:
            out = torch.baddbmm(self.bias, x, self.weight)
        return out.reshape(k, *batch, -1)


class StackedLayerNorm(nn.Module):
    EPS = 1e-5

    def __init__(self, models: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(models, 1, 1, width))
        self.bias = nn.Parameter(torch.zeros(models, 1, 1, width))

    def forward(self, x):
        if cpu_kernels.layer_norm_applies(x):
            return cpu_kernels.layer_norm(x, self.weight, self.bias, self.EPS)
        return F.layer_norm(x, x.shape[-1:], eps=self.EPS) * self.weight + self.bias


class SelfAttention(nn.Module):
    """Multi-head softmax attention with a dot-product or the released code's RBF logit."""

    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.heads, self.rbf = config.heads, config.attention == "rbf"
        self.qkv = StackedLinear(models, config.width, 3 * config.width)
        self.out = StackedLinear(models, config.width, config.width)

    def forward(self, h, mask, start=0):
        """mask: [K, T, T] for every sequence of a model, or [K, B, T, T] per sequence. Only the
        positions from `start` on attend (every position is still a key and a value)."""
        k, b, t, width = h.shape
        q, key, v = self.qkv(h).view(k, b, t, 3, self.heads, width // self.heads).permute(3, 0, 1, 4, 2, 5)
        q, mask = q[..., start:, :], mask[..., start:, :]
        mask = mask[:, None, None] if mask.dim() == 3 else mask[:, :, None]  # over [K, B, H, T, T]
        if self.rbf:
            # -1/2 ||q/sqrt(d_h) - k||^2 = q.k/sqrt(d_h) - ||k||^2/2 - ||q||^2/(2 d_h); the last term is
            # constant along a softmax row, so it is dropped.
            bias = -0.5 * (key**2).sum(-1)[..., None, :]
            bias = bias.masked_fill(~mask, float("-inf"))
            y = F.scaled_dot_product_attention(q, key, v, attn_mask=bias)
        else:
            y = F.scaled_dot_product_attention(q, key, v, attn_mask=mask)
        return self.out(y.transpose(2, 3).reshape(k, b, t - start, width))


class ReleasedSelfAttention(nn.Module):
    """The released code's attention: q, k and v project W to W/H features in total, H heads of
    W/H^2 each, and an output projection back to W. q is scaled by 1/sqrt(head width) before the
    logit, and masked logits are set to the most negative float rather than -inf."""

    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.heads, self.rbf = config.heads, config.attention == "rbf"
        self.features = config.width // config.heads
        self.qkv = StackedLinear(models, config.width, 3 * self.features, parts=3)
        self.out = StackedLinear(models, self.features, config.width)

    def forward(self, h, mask, start=0):
        """Only the positions from `start` on attend (every position is still a key and a value)."""
        qkv = self.qkv(h)
        if cpu_kernels.applies(qkv):
            return self.out(cpu_kernels.attention(qkv, mask, start, self.heads, self.rbf))
        k, b, t, _ = h.shape
        q, key, v = qkv.view(k, b, t, 3, self.heads, -1).permute(3, 0, 1, 4, 2, 5)  # [K, B, H, T, W/H^2]
        head_width, queries = q.shape[-1], t - start
        q, mask = q[..., start:, :] / math.sqrt(head_width), mask[:, start:]
        if self.rbf:
            # q.k - (||q||^2 + ||k||^2) / 2 = -||q - k||^2 / 2. The ||q||^2 term is constant along a
            # softmax row, so it is dropped, and ||k||^2 rides in the matmul as one more feature:
            # [q, -1/2] . [k, ||k||^2]. Elementwise ops over [T, T] logits are slow on a CPU.
            q = torch.cat([q, q.new_full((*q.shape[:-1], 1), -0.5)], dim=-1)
            key = torch.cat([key, (key * key).sum(-1, keepdim=True)], dim=-1)
        # The mask is an additive bias of 0 or the most negative float (the numbers of masked_fill, as
        # the logits are far smaller), which baddbmm adds while it computes the logits.
        bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, torch.finfo(q.dtype).min)
        bias = bias[:, None, None].expand(k, b, self.heads, queries, t).reshape(-1, queries, t)
        logits = torch.baddbmm(bias, q.reshape(-1, queries, q.shape[-1]), key.reshape(-1, t, key.shape[-1]).transpose(1, 2))
        y = (torch.softmax(logits, dim=-1) @ v.reshape(-1, t, head_width)).view(k, b, self.heads, queries, head_width)
        return self.out(y.transpose(2, 3).reshape(k, b, queries, self.features))


class TanhGELU(torch.autograd.Function):
    """GELU's tanh approximation, x (1 + tanh(u)) / 2 with u = sqrt(2 / pi) (x + 0.044715 x^3), written
    as the same function x sigmoid(2u): ATen's tanh is slow on a CPU, its sigmoid is not, and the
    backward pass reuses the saved sigmoid instead of evaluating a transcendental again."""

    SLOPE = 2 * math.sqrt(2 / math.pi)  # 2u = x (SLOPE + CUBIC x^2)
    CUBIC = SLOPE * 0.044715

    @staticmethod
    def forward(ctx, x):
        s = torch.mul(x, x).mul_(TanhGELU.CUBIC).add_(TanhGELU.SLOPE).mul_(x).sigmoid_()
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        # d/dx x s(2u) = s + x s (1 - s) d(2u)/dx, with x d(2u)/dx = x (SLOPE + 3 CUBIC x^2)
        x, s = ctx.saved_tensors
        x_slope = torch.mul(x, x).mul_(3 * TanhGELU.CUBIC).add_(TanhGELU.SLOPE).mul_(x)
        return torch.sub(1, s).mul_(s).mul_(x_slope).add_(s).mul_(grad)


def gelu_tanh(x):
    """GELU's tanh approximation: the sigmoid form on a CPU; ATen's fused kernel on a GPU, and in half
    precision, where ATen computes in float32 inside the kernel."""
    if x.is_cuda or x.dtype in (torch.bfloat16, torch.float16):
        return F.gelu(x, approximate="tanh")
    return TanhGELU.apply(x)


class MLP(nn.Module):
    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.fc = StackedLinear(models, config.width, config.ffn_width)
        self.proj = StackedLinear(models, config.ffn_width, config.width)
        self.released = config.released
        self.gelu = gelu_tanh if config.released else F.gelu  # the released code's approximate GELU

    def forward(self, h):
        if self.released and cpu_kernels.applies(h):
            # fc's bias is added inside the GELU's kernel, which saves a pass over the widest activations
            k, *batch, width = h.shape
            a = torch.bmm(h.reshape(k, -1, width), self.fc.weight)
            return self.proj(cpu_kernels.bias_tanh_gelu(a, self.fc.bias).view(k, *batch, -1))
        return self.proj(self.gelu(self.fc(h)))


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.ln_attention = StackedLayerNorm(models, config.width)
        self.attention = SelfAttention(models, config)
        self.ln_mlp = StackedLayerNorm(models, config.width)
        self.mlp = MLP(models, config)

    def forward(self, h, mask, start=0):
        """The hidden states of the positions from `start` on."""
        h = h[:, :, start:] + self.attention(self.ln_attention(h), mask, start)
        return h + self.mlp(self.ln_mlp(h))


class ReleasedBlock(nn.Module):
    """The released code's norm_first block: each LayerNorm replaces the residual stream, so the
    stream is renormalised twice per layer."""

    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.ln_attention = StackedLayerNorm(models, config.width)
        self.attention = ReleasedSelfAttention(models, config)
        self.ln_mlp = StackedLayerNorm(models, config.width)
        self.mlp = MLP(models, config)

    def forward(self, h, mask, start=0):
        """The hidden states of the positions from `start` on."""
        if cpu_kernels.layer_norm_applies(h):  # its one node runs the LayerNorm kernel, so it serves where that does
            # layer_by_layer's kernels and matmuls as one autograd node: the same numbers, without
            # eager PyTorch's overhead per module, op and node
            attention, mlp = self.attention, self.mlp
            parameters = (
                self.ln_attention.weight, self.ln_attention.bias, attention.qkv.weight, attention.qkv.bias, attention.out.weight,
                attention.out.bias, self.ln_mlp.weight, self.ln_mlp.bias, mlp.fc.weight, mlp.fc.bias, mlp.proj.weight, mlp.proj.bias,
            )
            return cpu_kernels.released_block(h, mask, start, attention.heads, attention.rbf, self.ln_attention.EPS, parameters)
        return self.layer_by_layer(h, mask, start)

    def layer_by_layer(self, h, mask, start=0):
        h = self.ln_attention(h)
        h = h[:, :, start:] + self.attention(h, mask, start)
        h = self.ln_mlp(h)
        return h + self.mlp(h)


class Probe(nn.Module):
    """A linear read-out of one layer's hidden state, trained without changing the backbone."""

    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.ln = StackedLayerNorm(models, config.width)
        self.linear = StackedLinear(models, config.width, config.output_dim)

    def forward(self, h):
        return self.linear(self.ln(h.detach()))


class Transformer(nn.Module):
    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = StackedLinear(models, config.input_dim, config.width)
        self.position = nn.Parameter(torch.empty(models, 1, config.n_positions, config.width))
        self.blocks = nn.ModuleList(Block(models, config) for _ in range(1 if config.shared else config.n_layers))
        self.ln_out = StackedLayerNorm(models, config.width)
        self.head = StackedLinear(models, config.width, config.output_dim)
        self.probes = nn.ModuleList(Probe(models, config) for _ in range(config.n_layers))

    def forward(self, tokens, mask, start=0):
        """tokens [K, B, T, input_dim] -> (output [K, B, T - start, out], probe outputs [n_layers, K, B, T - start, out]):
        the outputs of the positions from `start` on. The last layer computes only those positions."""
        h = self.embed(tokens) + self.position
        last = self.config.n_layers - 1
        probes = []
        for layer in range(self.config.n_layers):
            h = self.blocks[0 if self.config.shared else layer](h, mask, start if layer == last else 0)
            probes.append(self.probes[layer](h if layer == last else h[:, :, start:]))
        return self.head(self.ln_out(h)), torch.stack(probes)


class ReleasedTransformer(nn.Module):
    """The released code's model. Its per-layer probes are its read-out: the last layer's probe is
    the prediction and trains the backbone; the others see stop-gradient states (Fig. 3)."""

    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = StackedLinear(models, config.input_dim, config.width)
        self.position = nn.Parameter(torch.empty(models, 1, config.n_positions, config.width))
        self.blocks = nn.ModuleList(ReleasedBlock(models, config) for _ in range(1 if config.shared else config.n_layers))
        self.probes = nn.ModuleList(StackedLinear(models, config.width, config.output_dim) for _ in range(config.n_layers))

    def forward(self, tokens, mask, start=0):
        """tokens [K, B, T, input_dim] -> (output [K, B, T - start, out], probe outputs [n_layers, K, B, T - start, out]):
        the outputs of the positions from `start` on, the output being the last probe's. The last
        layer computes only those positions."""
        h = self.embed(tokens) + self.position
        last = self.config.n_layers - 1
        probes = []
        for layer in range(self.config.n_layers):
            h = self.blocks[0 if self.config.shared else layer](h, mask, start if layer == last else 0)
            probes.append(self.probes[layer](h if layer == last else h[:, :, start:].detach()))
        probes = torch.stack(probes)
        return probes[last], probes


class LinearAttentionLayer(nn.Module):
    """z <- z + P V sum_i m[j, i] z_i z_i^T K^T Q z_j, with the mask's weights m = visibility / n."""

    def __init__(self, models: int, dim: int):
        super().__init__()
        self.key, self.query, self.value, self.proj = (
            nn.Parameter(torch.empty(models, 1, dim, dim)) for _ in range(4)
        )

    def forward(self, z, weights):
        return linear_attention(z, self.key, self.query, self.value, self.proj, weights)


class LinearTransformer(nn.Module):
    """A stack of LSA layers on the raw tokens; the query's label slot is the prediction."""

    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(
            LinearAttentionLayer(models, config.input_dim) for _ in range(1 if config.shared else config.n_layers)
        )

    def forward(self, tokens, mask, start=0):
        """The outputs of the positions from `start` on (every layer updates every position)."""
        weights = (mask / mask[:, -1:].sum(-1, keepdim=True))[:, None]  # 1/n over the visible ICEs
        z, per_layer = tokens, []
        for layer in range(self.config.n_layers):
            z = self.layers[0 if self.config.shared else layer](z, weights)
            per_layer.append(z[..., start:, : self.config.output_dim])
        return per_layer[-1], torch.stack(per_layer)


def build(models: int, config: ModelConfig) -> nn.Module:
    if config.model == "lsa":
        return LinearTransformer(models, config)
    return (ReleasedTransformer if config.released else Transformer)(models, config)


@torch.no_grad()
def initialise(model: nn.Module, seeds: list[int]) -> None:
    """Draw model k's initial weights from its own seed, so that it starts the same whether it is
    trained alone or in a group. Call before moving the model to a device."""
    if isinstance(model, ReleasedTransformer):
        _initialise_released(model, seeds)
        return
    for k, seed in enumerate(seeds):
        generator = torch.Generator().manual_seed(seed)
        for module in model.modules():  # a fixed order, so the draws are reproducible
            if isinstance(module, StackedLinear):
                module.weight[k].normal_(0.0, 0.02, generator=generator)
                module.bias[k].zero_()
            elif isinstance(module, StackedLayerNorm):
                module.weight[k].fill_(1.0)
                module.bias[k].zero_()
            elif isinstance(module, Transformer):
                module.position[k].normal_(0.0, 0.02, generator=generator)
            elif isinstance(module, LinearAttentionLayer):
                # Small, so that a deep stack starts near the identity: the update is cubic in the
                # tokens, and unit-scale matrices overflow within a few layers.
                for matrix in (module.key, module.query, module.value, module.proj):
                    matrix[k].normal_(0.0, 0.02, generator=generator)


def _initialise_released(model: ReleasedTransformer, seeds: list[int]) -> None:
    """The released code's uniform_scaling: every weight U(-b, b), b = sqrt(1 / n) with n a kernel's
    (flattened) inputs, a bias's outputs (per fused map) or the position table's positions;
    LayerNorms start at scale 1 and bias 0."""

    def uniform(tensor, size, generator):
        bound = math.sqrt(1.0 / size)
        tensor.uniform_(-bound, bound, generator=generator)

    for k, seed in enumerate(seeds):
        generator = torch.Generator().manual_seed(seed)
        uniform(model.position[k], model.config.n_positions, generator)
        for module in model.modules():  # a fixed order, so the draws are reproducible
            if isinstance(module, StackedLinear):
                fan_in, fan_out = module.weight.shape[1:]
                uniform(module.weight[k], fan_in, generator)
                uniform(module.bias[k], fan_out // module.parts, generator)
            elif isinstance(module, StackedLayerNorm):
                module.weight[k].fill_(1.0)
                module.bias[k].zero_()
