"""Attention masks over a prompt of in-context examples (ICEs) followed by queries.

A prompt has `n_context` ICE positions, then `n_queries` query positions. Entry [j, i] of a mask
says whether position j attends to position i. The masks differ only in what an ICE sees:

- prefix: every ICE sees every ICE;
- causal: ICE j sees ICEs 1..j;
- causal2: the causal mask, with the linear attention's step eta/j instead of eta/n (App. D).

In all of them a query sees every ICE and nothing else, so queries are independent of each other.

prefix_lm is the language model's mask over a token sequence (icl.lm), with a split point per sequence.
"""

import torch

MASKS = ("prefix", "causal", "causal2")
TRAINED_MASKS = ("prefix", "causal")  # causal2 is the constructed LSA's alone (App. D)


def visibility(mask: str, n_context: int, n_queries: int, n_visible: int | None = None) -> torch.Tensor:
    """Boolean [T, T] matrix, T = n_context + n_queries; row j attends to column i where True.

    `n_visible` < n_context hides the ICEs from position n_visible on from every position: the prompt
    is shortened while the remaining ICEs and the queries keep their positions.
    """
    if mask not in MASKS:
        raise ValueError(f"unknown mask {mask!r}; choose one of {', '.join(MASKS)}")
    n_visible = n_context if n_visible is None else n_visible
    if not 1 <= n_visible <= n_context:
        raise ValueError(f"n_visible must be in 1..{n_context}, got {n_visible}")
    total = n_context + n_queries
    is_visible_ice = torch.arange(total) < n_visible
    sees = is_visible_ice.expand(total, total).clone()
    if mask != "prefix":
        ice = slice(0, n_context)
        sees[ice, ice] &= torch.ones(n_context, n_context, dtype=torch.bool).tril()
    return sees


def lsa_weights(mask: str, n_context: int, n_queries: int, dtype=torch.float64) -> torch.Tensor:
    """The linear attention's [T, T] weights: the visibility divided by the step's normaliser.

    With P = eta * I in the construction, a weight of 1/n gives the step eta/n of prefix and causal,
    and causal2's ICE row j (1-based) gets 1/j. Query rows use 1/n for every mask.
    """
    weights = visibility(mask, n_context, n_queries).to(dtype) / n_context
    if mask == "causal2":
        rows = torch.arange(1, n_context + 1, dtype=dtype)
        weights[:n_context] = visibility(mask, n_context, n_queries)[:n_context].to(dtype) / rows[:, None]
    return weights


def prefix_lm(split: torch.Tensor, length: int) -> torch.Tensor:
    """Language-model masks [B, T, T], T = length, one per sequence: sequence b's first split[b] tokens
    are its prefix, which attends to itself bidirectionally; every later token attends to the prefix and
    to the tokens up to itself. split 0 is the causal mask, split T the fully bidirectional one."""
    position = torch.arange(length)
    causal = position[None, :] <= position[:, None]  # [j, i]: i <= j
    in_prefix = position[None, :] < torch.as_tensor(split).reshape(-1, 1)  # [b, i]: i < split[b]
    return causal[None] | in_prefix[:, None, :]
