"""Statistics over seeds: 95% t-intervals fit for each kind of error, paired tests and Holm's correction.

Errors come in two kinds. An MSE is positive and skewed over a few seeds, so it is summarised on
the log scale: the geometric mean with a t-interval on log errors, which never goes below 0.
An error % (or accuracy %) is bounded and near-symmetric: the mean with a plain t-interval.
Tables and figures both take their intervals from here, so they agree.
"""

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


def mean_ci(values, confidence: float = CONFIDENCE):
    """Mean and its t confidence interval (low, high); NaN bounds for a single value."""
    values = np.asarray(values, dtype=float)
    mean = values.mean()
    if len(values) < 2:
        return mean, np.nan, np.nan
    half = values.std(ddof=1) / np.sqrt(len(values)) * scipy_stats.t.ppf(0.5 + confidence / 2, len(values) - 1)
    return mean, mean - half, mean + half


def geometric_mean_ci(values, confidence: float = CONFIDENCE):
    """Geometric mean of non-negative values and the t confidence interval of the mean log, mapped back.

    An exact value (0) makes the mean 0 and a diverged one (+inf) makes it +inf; the interval is
    then NaN, as no spread on the log scale is defined.
    """
    values = np.asarray(values, dtype=float)
    if not (values >= 0).all():
        raise ValueError(f"a geometric mean needs non-negative values; got {values[~(values >= 0)].tolist()}")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean, low, high = mean_ci(np.log(values), confidence)
    return np.exp(mean), np.exp(low), np.exp(high)


def summarise(values, log: bool):
    """Centre and 95% interval of errors over seeds: geometric (log=True, for MSEs) or arithmetic (a
    percentage, whose interval is cut to [0, 100]: a t-interval over few seeds can leave it)."""
    if log:
        return geometric_mean_ci(values)
    mean, low, high = mean_ci(values)
    return mean, *np.clip([low, high], 0.0, 100.0)


def paired_log_ratio(causal, prefix):
    """Paired comparison over seeds of two positive errors.

    Returns the geometric-mean ratio causal/prefix with its 95% CI, and the two-sided p-value of a
    paired t-test on log errors (does causal differ from prefix on the same data and seed?).
    """
    ratios = np.asarray(causal, dtype=float) / np.asarray(prefix, dtype=float)
    ratio, low, high = geometric_mean_ci(ratios)
    logs = np.log(ratios)
    if len(logs) < 2 or np.allclose(logs, logs[0]):
        p_value = np.nan
    else:
        p_value = scipy_stats.ttest_1samp(logs, 0.0).pvalue
    return ratio, low, high, p_value


def holm(p_values):
    """Holm's step-down adjusted p-values, controlling the family-wise error over all given tests.

    The k-th smallest of m p-values is multiplied by m - k + 1; adjusted values are made monotone in
    that order and capped at 1. NaN p-values (no test possible) stay NaN and do not count in m.
    """
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p_values))
    order = tested[np.argsort(p_values[tested], kind="stable")]
    scaled = p_values[order] * (len(order) - np.arange(len(order)))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def paired_difference(treated, control, confidence: float = CONFIDENCE):
    """Paired comparison over seeds of two accuracies: the mean difference treated - control, its t-interval,
    and the two-sided p-value of a paired t-test (NaN for one seed or identical differences)."""
    differences = np.asarray(treated, dtype=float) - np.asarray(control, dtype=float)
    mean, low, high = mean_ci(differences, confidence)
    if len(differences) < 2 or np.allclose(differences, differences[0]):
        return mean, low, high, np.nan
    return mean, low, high, scipy_stats.ttest_1samp(differences, 0.0).pvalue
