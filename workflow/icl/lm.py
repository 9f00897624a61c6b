"""A decoder-only language model over tokens, K independent models stacked, and its pretraining objectives.

The blocks are icl.models' standard pre-LN blocks; the model adds token and position embeddings, a
final LayerNorm and a softmax over the vocabulary. Masks are per sequence: [K, B, T, T] booleans.

Objectives (token t is predicted from position t - 1; a split s in 1..T-1 is drawn per sequence):
- causal: the causal mask; every token 1..T-1 is a target.
- prefix: T5's prefix LM. Tokens 0..s-1 are the prefix and attend to each other bidirectionally
  (masks.prefix_lm); the targets are the suffix tokens s..T-1. Position s-1 sees the whole prefix
  and nothing after it, so no target is visible where it is predicted.
- prefix_full: the prefix objective's suffix targets, plus the prefix tokens 1..s-1 predicted by a
  second pass over the same sequence with the causal mask (under the prefix mask, position t-1 < s-1
  sees token t). Every token 1..T-1 is then a target exactly once, as in causal, so the two objectives
  get the same supervision and differ only in the mask of the suffix targets.
Each model's loss is the mean cross-entropy over its targets in the batch.
"""

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import masks, models

OBJECTIVES = ("causal", "prefix", "prefix_full")


@dataclass(frozen=True)
class LMConfig:
    vocab_size: int
    context: int  # positions
    n_layers: int
    width: int
    heads: int
    ffn_width: int

    def block_config(self) -> models.ModelConfig:
        return models.ModelConfig(
            model="softmax", n_layers=self.n_layers, width=self.width, heads=self.heads, ffn_width=self.ffn_width,
            attention="dot", shared=False, variant="standard",
        )


class LanguageModel(nn.Module):
    def __init__(self, models_: int, config: LMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Parameter(torch.empty(models_, config.vocab_size, config.width))
        self.position = nn.Parameter(torch.empty(models_, 1, config.context, config.width))
        self.blocks = nn.ModuleList(models.Block(models_, config.block_config()) for _ in range(config.n_layers))
        self.ln_out = models.StackedLayerNorm(models_, config.width)
        self.head = models.StackedLinear(models_, config.width, config.vocab_size)

    def forward(self, tokens, mask):
        """tokens [K, B, T] (long), mask [K, B, T, T] -> logits [K, B, T, vocab]."""
        k, _, t = tokens.shape
        h = self.embed[torch.arange(k, device=tokens.device)[:, None, None], tokens] + self.position[:, :, :t]
        for block in self.blocks:
            h = block(h, mask)
        return self.head(self.ln_out(h))


@functools.cache  # builds a model to count: once per shape
def parameters(config: LMConfig) -> int:
    """Parameters of one model."""
    return sum(p[0].numel() for p in LanguageModel(1, config).parameters())


@torch.no_grad()
def initialise(model: LanguageModel, seeds: list[int]) -> None:
    """Model k's weights from its own seed (normal, std 0.02; LayerNorms at 1 and 0), so it starts the same in any group."""
    for k, seed in enumerate(seeds):
        generator = torch.Generator().manual_seed(seed)
        model.embed[k].normal_(0.0, 0.02, generator=generator)
        model.position[k].normal_(0.0, 0.02, generator=generator)
        for module in model.modules():  # a fixed order, so the draws are reproducible
            if isinstance(module, models.StackedLinear):
                module.weight[k].normal_(0.0, 0.02, generator=generator)
                module.bias[k].zero_()
            elif isinstance(module, models.StackedLayerNorm):
                module.weight[k].fill_(1.0)
                module.bias[k].zero_()


def passes(objective: str, split: torch.Tensor, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The forward passes of an objective for sequences of `length` tokens with prefix lengths `split` [B]:
    a list of (mask [B, T, T], targets [B, T - 1]); targets[b, t - 1] says whether token t is a target of that pass."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    causal = masks.prefix_lm(torch.zeros_like(split), length)
    if objective == "causal":
        return [(causal, torch.ones(len(split), length - 1, dtype=torch.bool))]
    suffix = torch.arange(1, length)[None, :] >= split[:, None]
    objective_passes = [(masks.prefix_lm(split, length), suffix)]
    if objective == "prefix_full":
        objective_passes.append((causal, ~suffix))
    return objective_passes


def loss(model: LanguageModel, tokens: torch.Tensor, model_passes: list) -> torch.Tensor:
    """Per-model mean cross-entropy over the targets [K]. tokens [K, B, T]; model_passes: per pass, (mask
    [K, B, T, T], targets [K, B, T - 1])."""
    total = torch.zeros(tokens.shape[0], device=tokens.device)
    count = torch.zeros_like(total)
    for mask, targets in model_passes:
        logits = model(tokens, mask)[:, :, :-1]
        cross_entropy = F.cross_entropy(logits.flatten(0, 2), tokens[:, :, 1:].flatten(), reduction="none").view(targets.shape)
        total = total + (cross_entropy * targets).sum((1, 2))
        count = count + targets.sum((1, 2))
    return total / count
