"""The trained models of Sec. 5.2, written for a stack of K independent models.

Every parameter has a leading model dimension K, and activations are [K, B, T, features]: one
forward pass runs K models side by side with batched matmuls, and since the models share no
parameter and the loss is a sum of per-model losses, each model's gradients are its own.
K = 1 is an ordinary single model.

- Transformer: pre-LN softmax blocks, learned position embeddings, an input projection, a linear
  read-out, and a linear probe per layer trained on stop-gradient hidden states (Fig. 3).
- LinearTransformer: linear self-attention layers (Sec. 3) on the raw tokens, no softmax, no MLP.

Both take the attention mask as an argument: [K, T, T] booleans from masks.visibility.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .lsa import linear_attention


@dataclass(frozen=True)
class ModelConfig:
    model: str = "softmax"  # softmax or lsa
    n_layers: int = 24
    width: int = 128
    heads: int = 2
    ffn_width: int = 512
    attention: str = "dot"  # dot or rbf
    shared: bool = True
    input_dim: int = 17  # label dims + x dims
    output_dim: int = 1
    n_positions: int = 60

    @classmethod
    def from_spec(cls, spec: dict, output_dim: int) -> "ModelConfig":
        return cls(
            model=spec["model"], n_layers=spec["n_layers"], width=spec["width"], heads=spec["heads"],
            ffn_width=spec["ffn_width"], attention=spec["attention"], shared=spec["shared"],
            input_dim=output_dim + spec["x_dim"], output_dim=output_dim,
            n_positions=spec["n_context"] + spec["n_queries"],
        )


class StackedLinear(nn.Module):
    """K independent affine maps: [K, B, T, fan_in] -> [K, B, T, fan_out]."""

    def __init__(self, models: int, fan_in: int, fan_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(models, fan_in, fan_out))
        self.bias = nn.Parameter(torch.zeros(models, 1, fan_out))

    def forward(self, x):
        k, *batch, fan_in = x.shape
        out = torch.baddbmm(self.bias, x.reshape(k, -1, fan_in), self.weight)
        return out.view(k, *batch, -1)


class StackedLayerNorm(nn.Module):
    def __init__(self, models: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(models, 1, 1, width))
        self.bias = nn.Parameter(torch.zeros(models, 1, 1, width))

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:]) * self.weight + self.bias


class SelfAttention(nn.Module):
    """Multi-head softmax attention with a dot-product or the released code's RBF logit."""

    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.heads, self.rbf = config.heads, config.attention == "rbf"
        self.qkv = StackedLinear(models, config.width, 3 * config.width)
        self.out = StackedLinear(models, config.width, config.width)

    def forward(self, h, mask):
        k, b, t, width = h.shape
        q, key, v = self.qkv(h).view(k, b, t, 3, self.heads, width // self.heads).permute(3, 0, 1, 4, 2, 5)
        if self.rbf:
            # -1/2 ||q/sqrt(d_h) - k||^2 = q.k/sqrt(d_h) - ||k||^2/2 - ||q||^2/(2 d_h); the last term is
            # constant along a softmax row, so it is dropped.
            bias = -0.5 * (key**2).sum(-1)[..., None, :]
            bias = bias.masked_fill(~mask[:, None, None], float("-inf"))
            y = F.scaled_dot_product_attention(q, key, v, attn_mask=bias)
        else:
            y = F.scaled_dot_product_attention(q, key, v, attn_mask=mask[:, None, None])
        return self.out(y.transpose(2, 3).reshape(k, b, t, width))


class MLP(nn.Module):
    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.fc = StackedLinear(models, config.width, config.ffn_width)
        self.proj = StackedLinear(models, config.ffn_width, config.width)

    def forward(self, h):
        return self.proj(F.gelu(self.fc(h)))


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, models: int, config: ModelConfig):
        super().__init__()
        self.ln_attention = StackedLayerNorm(models, config.width)
        self.attention = SelfAttention(models, config)
        self.ln_mlp = StackedLayerNorm(models, config.width)
        self.mlp = MLP(models, config)

    def forward(self, h, mask):
        h = h + self.attention(self.ln_attention(h), mask)
        return h + self.mlp(self.ln_mlp(h))


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

    def forward(self, tokens, mask):
        """tokens [K, B, T, input_dim] -> (output [K, B, T, out], probe outputs [n_layers, K, B, T, out])."""
        h = self.embed(tokens) + self.position
        probes = []
        for layer in range(self.config.n_layers):
            h = self.blocks[0 if self.config.shared else layer](h, mask)
            probes.append(self.probes[layer](h))
        return self.head(self.ln_out(h)), torch.stack(probes)


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

    def forward(self, tokens, mask):
        weights = (mask / mask[:, -1:].sum(-1, keepdim=True))[:, None]  # 1/n over the visible ICEs
        z, per_layer = tokens, []
        for layer in range(self.config.n_layers):
            z = self.layers[0 if self.config.shared else layer](z, weights)
            per_layer.append(z[..., : self.config.output_dim])
        return per_layer[-1], torch.stack(per_layer)


def build(models: int, config: ModelConfig) -> nn.Module:
    return (Transformer if config.model == "softmax" else LinearTransformer)(models, config)


@torch.no_grad()
def initialise(model: nn.Module, seeds: list[int]) -> None:
    """Draw model k's initial weights from its own seed, so that it starts the same whether it is
    trained alone or in a group. Call before moving the model to a device."""
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


def training_flops(config: ModelConfig, batch_size: int) -> float:
    """Matmul FLOPs of one training step of one model: forward and backward (about 3x forward).

    Per token and layer, the softmax block does 4 W^2 (attention projections) + 2 W F (MLP)
    multiply-adds and 2 T W for the scores and the weighted sum; the probes and the input and
    output maps are added once per layer or once. Used to report the fraction of a device's peak.
    """
    t, w, f, layers = config.n_positions, config.width, config.ffn_width, config.n_layers
    if config.model == "softmax":
        per_token = layers * (4 * w * w + 2 * w * f + 2 * t * w + w * config.output_dim)
        per_token += config.input_dim * w + w * config.output_dim
    else:
        d = config.input_dim
        per_token = layers * (4 * d * d + 2 * t * d)
    return 3 * 2 * per_token * t * batch_size


def training_bytes(config: ModelConfig, batch_size: int) -> float:
    """Rough device memory of one model in training: weights with their gradient and two Adam moments,
    plus the activations autograd keeps (per token and layer: the block's inputs and projections,
    the MLP's hidden layer, the attention weights and the probe), in float32."""
    t, w, f, layers = config.n_positions, config.width, config.ffn_width, config.n_layers
    blocks = 1 if config.shared else layers
    if config.model == "softmax":
        parameters = blocks * (4 * w * w + 2 * w * f) + t * w + layers * 2 * w + (config.input_dim + 2) * w
        per_token_layer = 10 * w + 2 * f + 2 * config.heads * t
    else:
        parameters = blocks * 4 * config.input_dim**2
        per_token_layer = 6 * config.input_dim + 2 * t
    activations = batch_size * t * layers * per_token_layer
    return 4.0 * (4 * parameters + 1.5 * activations)
