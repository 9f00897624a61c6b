"""The attention masks of the paper, checked entry by entry against their definitions.

A prompt is `n` in-context examples (ICEs, positions 0..n-1) followed by `q` queries (positions n..n+q-1).
Entry [j, i] says whether position j attends to position i.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from icl import masks

SIZES = [(1, 1), (1, 3), (2, 1), (3, 2), (5, 1), (7, 4), (12, 3), (6, 0)]
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)


# The definitions, written independently of the package: one clause per sentence of the paper.
def sees(mask: str, n: int, j: int, i: int, n_visible: int | None = None) -> bool:
    n_visible = n if n_visible is None else n_visible
    if i >= n:  # nothing ever sees a query (so a query sees neither itself nor another query)
        return False
    if i >= n_visible:  # hidden ICEs are seen by no one
        return False
    if j >= n:  # a query sees every (visible) ICE
        return True
    if mask == "prefix":  # prefix: ICE j sees every ICE
        return True
    return i <= j  # causal and causal2: ICE j sees exactly ICEs 0..j


def weight(mask: str, n: int, j: int, i: int) -> float:
    if not sees(mask, n, j, i):
        return 0.0
    if mask == "causal2" and j < n:
        return 1.0 / (j + 1)  # step eta/j for the 1-based ICE row j
    return 1.0 / n


def assert_matches_definition(mask, n, q, n_visible=None):
    got = masks.visibility(mask, n, q, n_visible) if n_visible is not None else masks.visibility(mask, n, q)
    assert got.dtype == torch.bool
    assert got.shape == (n + q, n + q)
    got = got.tolist()
    for j in range(n + q):
        for i in range(n + q):
            assert got[j][i] == sees(mask, n, j, i, n_visible), (mask, n, q, n_visible, j, i)


def assert_weights_match_definition(mask, n, q):
    got = masks.lsa_weights(mask, n, q)
    assert got.dtype == torch.float64
    assert got.shape == (n + q, n + q)
    got = got.tolist()
    for j in range(n + q):
        for i in range(n + q):
            assert math.isclose(got[j][i], weight(mask, n, j, i), rel_tol=1e-14, abs_tol=0.0), (mask, n, q, j, i)


# --- visibility, position by position ------------------------------------------------------------


@pytest.mark.parametrize("n, q", SIZES)
def test_prefix_ice_sees_every_ice(n, q):
    assert_matches_definition("prefix", n, q)
    assert masks.visibility("prefix", n, q)[:n, :n].all()


@pytest.mark.parametrize("mask", ["causal", "causal2"])
@pytest.mark.parametrize("n, q", SIZES)
def test_causal_ice_sees_exactly_the_ices_up_to_itself(mask, n, q):
    assert_matches_definition(mask, n, q)
    ice = masks.visibility(mask, n, q)[:n, :n]
    assert torch.equal(ice, torch.ones(n, n, dtype=torch.bool).tril())


@pytest.mark.parametrize("mask", masks.MASKS)
@pytest.mark.parametrize("n, q", SIZES)
def test_query_sees_all_ices_but_not_itself_nor_other_queries(mask, n, q):
    seen = masks.visibility(mask, n, q)
    assert seen[n:, :n].all()
    assert not seen[n:, n:].any()


@pytest.mark.parametrize("mask", masks.MASKS)
@pytest.mark.parametrize("n, q", SIZES)
def test_nothing_ever_sees_a_query(mask, n, q):
    assert not masks.visibility(mask, n, q)[:, n:].any()


def test_masks_differ_only_in_what_an_ice_sees():
    n, q = 6, 3
    prefix, causal, causal2 = (masks.visibility(m, n, q) for m in ("prefix", "causal", "causal2"))
    assert torch.equal(causal, causal2)  # causal2 changes the step, not the visibility
    assert torch.equal(prefix[n:], causal[n:])  # identical query rows
    assert torch.equal(causal & prefix, causal)  # causal sees a subset of what prefix sees
    assert not torch.equal(prefix, causal)


# --- n_visible: a shortened prompt -------------------------------------------------------------


@pytest.mark.parametrize("mask", masks.MASKS)
@pytest.mark.parametrize("n, q, n_visible", [(1, 1, 1), (4, 2, 1), (4, 2, 3), (4, 2, 4), (9, 3, 5), (6, 0, 2)])
def test_hidden_ices_are_seen_by_no_one(mask, n, q, n_visible):
    assert_matches_definition(mask, n, q, n_visible)
    seen = masks.visibility(mask, n, q, n_visible)
    assert not seen[:, n_visible:].any()
    # The visible part of the prompt is masked exactly as an unshortened prompt of n_visible ICEs.
    short = masks.visibility(mask, n_visible, 0)
    assert torch.equal(seen[:n_visible, :n_visible], short)


@pytest.mark.parametrize("mask", masks.MASKS)
def test_n_visible_equal_to_n_context_changes_nothing(mask):
    assert torch.equal(masks.visibility(mask, 5, 2, 5), masks.visibility(mask, 5, 2))
    assert torch.equal(masks.visibility(mask, 5, 2, None), masks.visibility(mask, 5, 2))


@pytest.mark.parametrize("n_visible", [0, -1, 6, 100])
def test_bad_n_visible_raises_naming_the_value(n_visible):
    with pytest.raises(ValueError, match=rf"got {n_visible}\b"):
        masks.visibility("causal", 5, 2, n_visible)


@pytest.mark.parametrize("bad", ["bidirectional", "Prefix", "", "causal3"])
def test_unknown_mask_raises_naming_it(bad):
    with pytest.raises(ValueError, match=repr(bad)):
        masks.visibility(bad, 4, 1)
    with pytest.raises(ValueError, match=repr(bad)):
        masks.lsa_weights(bad, 4, 1)


# --- lsa_weights: the step normaliser ---------------------------------------------------------


@pytest.mark.parametrize("mask", masks.MASKS)
@pytest.mark.parametrize("n, q", SIZES)
def test_lsa_weights_are_visibility_over_the_step_normaliser(mask, n, q):
    assert_weights_match_definition(mask, n, q)


@pytest.mark.parametrize("n, q", SIZES)
def test_prefix_and_causal_weights_are_one_over_n(n, q):
    for mask in ("prefix", "causal"):
        w = masks.lsa_weights(mask, n, q)
        visible = masks.visibility(mask, n, q)
        assert torch.all(w[visible] == 1.0 / n)
        assert torch.all(w[~visible] == 0)


@pytest.mark.parametrize("n, q", SIZES)
def test_causal2_ice_row_j_is_one_over_j_and_query_rows_one_over_n(n, q):
    w = masks.lsa_weights("causal2", n, q)
    for j in range(1, n + 1):  # 1-based ICE row j
        assert torch.allclose(w[j - 1, :j], torch.full((j,), 1.0 / j, dtype=torch.float64), rtol=1e-15, atol=0)
        assert torch.all(w[j - 1, j:] == 0)
    assert torch.all(w[n:, :n] == 1.0 / n)
    assert torch.all(w[n:, n:] == 0)


def test_lsa_weights_dtype_follows_argument():
    assert masks.lsa_weights("causal2", 3, 1, dtype=torch.float32).dtype == torch.float32


# --- property-based versions over random sizes ----------------------------------------------------

mask_names = st.sampled_from(masks.MASKS)


@PROPERTY
@given(mask=mask_names, n=st.integers(1, 25), q=st.integers(0, 6))
def test_visibility_matches_definition_for_any_size(mask, n, q):
    assert_matches_definition(mask, n, q)


@PROPERTY
@given(mask=mask_names, n=st.integers(1, 25), q=st.integers(0, 6), data=st.data())
def test_shortened_prompt_matches_definition_for_any_size(mask, n, q, data):
    n_visible = data.draw(st.integers(1, n), label="n_visible")
    assert_matches_definition(mask, n, q, n_visible)


@PROPERTY
@given(mask=mask_names, n=st.integers(1, 25), q=st.integers(0, 6), data=st.data())
def test_out_of_range_n_visible_always_raises(mask, n, q, data):
    n_visible = data.draw(st.one_of(st.integers(-50, 0), st.integers(n + 1, n + 50)), label="n_visible")
    with pytest.raises(ValueError, match=rf"got {n_visible}$"):
        masks.visibility(mask, n, q, n_visible)


@PROPERTY
@given(mask=mask_names, n=st.integers(1, 25), q=st.integers(0, 6))
def test_lsa_weights_match_definition_for_any_size(mask, n, q):
    assert_weights_match_definition(mask, n, q)


@PROPERTY
@given(n=st.integers(1, 40), q=st.integers(0, 6))
def test_weight_rows_sum_as_the_step_averages(n, q):
    """Queries and prefix/causal2 ICEs average over what they see (rows sum to 1); causal ICE j sums to j/n."""
    ones = torch.ones(n, dtype=torch.float64)
    for mask in masks.MASKS:
        rows = masks.lsa_weights(mask, n, q).sum(1)
        assert torch.allclose(rows[n:], torch.ones(q, dtype=torch.float64), rtol=1e-12, atol=0)
        if mask == "causal":
            expected = torch.arange(1, n + 1, dtype=torch.float64) / n
        else:
            expected = ones
        assert torch.allclose(rows[:n], expected, rtol=1e-12, atol=0)


# --- the language model's prefix-LM mask, one split per sequence ---


def sees_lm(split: int, j: int, i: int) -> bool:
    """T5's prefix LM: a prefix token sees the whole prefix and nothing else; a suffix token sees every token up to itself."""
    if j < split:
        return i < split
    return i <= j


@PROPERTY
@given(length=st.integers(1, 12), splits=st.lists(st.integers(0, 12), min_size=1, max_size=4))
def test_prefix_lm_mask_entry_by_entry(length, splits):
    splits = [min(s, length) for s in splits]
    sees = masks.prefix_lm(torch.tensor(splits), length)
    assert sees.shape == (len(splits), length, length) and sees.dtype == torch.bool
    for b, split in enumerate(splits):
        for j in range(length):
            for i in range(length):
                assert bool(sees[b, j, i]) == sees_lm(split, j, i), (split, j, i)


def test_prefix_lm_mask_prefix_sees_later_prefix_and_suffix_never_sees_later():
    sees = masks.prefix_lm(torch.tensor([3, 0, 5]), 5)
    assert sees[0, 0, 2] and not sees[0, 0, 3]  # a prefix token sees a later prefix token, not the suffix
    assert sees[0, 3, 2] and not sees[0, 3, 4]  # a suffix token sees the prefix, never a later token
    assert torch.equal(sees[1], torch.ones(5, 5, dtype=torch.bool).tril())  # split 0: causal
    assert sees[2].all()  # split T: bidirectional
