"""Linear self-attention (LSA, Sec. 3 of the paper) and its gradient-descent construction (eq. 5).

A layer updates every token z_j (a column (x_j, y_j)) as

    z_j <- z_j + P V sum_i m[j, i] z_i z_i^T K^T Q z_j,

where m holds the mask's weights (see masks.lsa_weights). Tokens are rows here, so the
matrices are applied from the right as transposes.
"""

from dataclasses import dataclass

import torch


def linear_attention(z, key, query, value, proj, weights):
    """One LSA layer. z: [..., T, D]; key, query, value, proj: [..., D, D]; weights: [..., T, T]."""
    keys = z @ key.mT
    queries = z @ query.mT
    values = z @ value.mT
    scores = (queries @ keys.mT) * weights  # scores[j, i] = (Q z_j) . (K z_i)
    return z + (scores @ values) @ proj.mT


@dataclass
class Construction:
    """The matrices of eq. 5: K = Q = diag(I_d, 0), V = diag(0_d, -1), P = eta I.

    With the mask weights carrying 1/n (or 1/j for causal2), P = eta I gives the paper's step eta/n.
    """

    key: torch.Tensor
    query: torch.Tensor
    value: torch.Tensor
    proj: torch.Tensor

    @classmethod
    def gradient_descent(cls, d: int, eta: float, dtype=torch.float64) -> "Construction":
        x_part = torch.diag(torch.cat([torch.ones(d), torch.zeros(1)])).to(dtype)
        y_part = torch.diag(torch.cat([torch.zeros(d), -torch.ones(1)])).to(dtype)
        return cls(key=x_part, query=x_part, value=y_part, proj=eta * torch.eye(d + 1, dtype=dtype))


def tokens(x_context, y_context, x_query):
    """Stack ICE tokens (x_i, y_i) and query tokens (x_q, 0) into [B, n + q, d + 1]."""
    ice = torch.cat([x_context, y_context[..., None]], dim=-1)
    query = torch.cat([x_query, torch.zeros_like(x_query[..., :1])], dim=-1)
    return torch.cat([ice, query], dim=-2)


def constructed_forward(z, construction: Construction, weights, depth: int):
    """Run `depth` identical constructed layers; return the last coordinate after each: [depth, B, T]."""
    deltas = []
    for _ in range(depth):
        z = linear_attention(z, construction.key, construction.query, construction.value, construction.proj, weights)
        deltas.append(z[..., -1])
    return torch.stack(deltas)
