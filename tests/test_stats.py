"""Intervals fit for positive, skewed errors, and Holm's correction, checked against hand computations."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from icl import stats

T_975_2 = 4.302652729749464  # the 97.5% quantile of Student's t with 2 degrees of freedom, from a printed table


def test_geometric_mean_ci_is_a_t_interval_on_log_errors():
    # ln of 0.01, 0.1, 1 is evenly spaced by ln 10: mean ln 0.1, standard deviation ln 10.
    mean, low, high = stats.geometric_mean_ci([0.01, 0.1, 1.0])
    half = math.log(10) * T_975_2 / math.sqrt(3)
    assert mean == pytest.approx(0.1)
    assert low == pytest.approx(0.1 * math.exp(-half))
    assert high == pytest.approx(0.1 * math.exp(half))


def test_the_arithmetic_interval_of_the_same_errors_would_go_below_zero():
    mean, low, high = stats.mean_ci([0.01, 0.1, 1.0])
    assert mean == pytest.approx(0.37)
    assert low == pytest.approx(0.37 - np.std([0.01, 0.1, 1.0], ddof=1) * T_975_2 / math.sqrt(3))
    assert low < 0 < stats.geometric_mean_ci([0.01, 0.1, 1.0])[1]


@given(st.lists(st.floats(1e-12, 1e6), min_size=2, max_size=8))
def test_a_geometric_interval_is_never_negative_and_holds_its_centre(values):
    mean, low, high = stats.geometric_mean_ci(values)
    assert 0 <= low <= mean * (1 + 1e-9) and mean <= high * (1 + 1e-9)


def test_exact_and_diverged_errors_give_no_interval_and_negative_ones_are_refused():
    assert stats.geometric_mean_ci([0.0, 1e-3, 1e-2])[0] == 0 and np.isnan(stats.geometric_mean_ci([0.0, 1e-3])[1])
    assert stats.geometric_mean_ci([np.inf, 1e-3])[0] == np.inf and np.isnan(stats.geometric_mean_ci([np.inf, 1e-3])[2])
    with pytest.raises(ValueError, match="non-negative"):
        stats.geometric_mean_ci([0.1, -0.2])


def test_one_seed_has_no_interval():
    assert stats.mean_ci([3.0])[0] == 3.0 and np.isnan(stats.mean_ci([3.0])[1:]).all()


def test_paired_ratio_is_the_geometric_mean_of_per_seed_ratios():
    ratio, low, high, p_value = stats.paired_log_ratio([0.2, 0.4, 0.8], [0.1, 0.1, 0.1])
    assert ratio == pytest.approx(4.0)
    assert (low, high) == pytest.approx(stats.geometric_mean_ci([2.0, 4.0, 8.0])[1:])
    # log ratios ln 2, ln 4, ln 8: t = 2 ln 2 / (ln 2 / sqrt 3) = 2 sqrt 3 on 2 degrees of freedom
    assert p_value == pytest.approx(0.0742, abs=1e-4)


def test_holm_steps_down_from_the_smallest_p_value():
    # Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> monotone: 0.06.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_is_capped_at_one_and_skips_untested_settings():
    # Sorted: 0.3 x 3 = 0.9, 0.6 x 2 = 1.2 -> 1, 0.9 x 1 -> monotone 1; NaN does not count in m.
    assert stats.holm([0.3, 0.9, np.nan, 0.6]) == pytest.approx([0.9, 1.0, np.nan, 1.0], nan_ok=True)
    assert len(stats.holm([])) == 0


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_never_lowers_a_p_value_and_keeps_their_order(p_values):
    adjusted = stats.holm(p_values)
    assert (adjusted >= np.asarray(p_values)).all() and (adjusted <= 1).all()
    order = np.argsort(p_values, kind="stable")
    assert (np.diff(adjusted[order]) >= 0).all()


def test_a_percentage_interval_stays_within_0_and_100():
    mean, low, high = stats.summarise([2.0, 4.0, 30.0], log=False)
    assert mean == 12.0 and low == 0.0 and high == pytest.approx(12.0 + np.std([2.0, 4.0, 30.0], ddof=1) * T_975_2 / math.sqrt(3))
    assert stats.summarise([97.0, 99.9], log=False)[2] == 100.0
