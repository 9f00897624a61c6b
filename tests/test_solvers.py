"""Least squares: the minimum-norm solution, and the same bits on every call."""

import torch

from icl import solvers


def _problem(batch, m, n, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(batch, m, n, generator=g, dtype=torch.float64) * 2 - 1
    return a, a @ torch.randn(batch, n, k, generator=g, dtype=torch.float64) + 0.1 * torch.randn(batch, m, k, generator=g, dtype=torch.float64)


def test_least_squares_is_the_minimum_norm_solution_with_fewer_or_more_equations_than_unknowns():
    for m in (2, 5, 12):
        a, b = _problem(16, m, 5, 2)
        assert torch.allclose(solvers.least_squares(a, b), torch.linalg.pinv(a) @ b, atol=1e-10), m


def test_least_squares_gives_the_same_bits_whatever_was_allocated_before():
    # The default driver (gelsy) fails this: its result depended on the heap's state.
    a, b = _problem(32, 40, 20, 3)
    reference = [solvers.least_squares(a[:, :m], b[:, :m]) for m in range(1, 41)]
    held = []
    for size in range(1, 400, 37):
        held.append(torch.randn(size))
        for m in range(1, 41):
            assert torch.equal(solvers.least_squares(a[:, :m].clone(), b[:, :m].clone()), reference[m - 1]), (size, m)
