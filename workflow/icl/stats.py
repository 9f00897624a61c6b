"""Statistics over seeds: means with t-based 95% confidence intervals, and paired tests."""

import numpy as np
from scipy import stats as scipy_stats


def mean_ci(values, confidence: float = 0.95):
    """Mean and the half-width of its t confidence interval (NaN half-width for a single value)."""
    values = np.asarray(values, dtype=float)
    mean = values.mean()
    if len(values) < 2:
        return mean, np.nan
    sem = values.std(ddof=1) / np.sqrt(len(values))
    return mean, sem * scipy_stats.t.ppf(0.5 + confidence / 2, len(values) - 1)


def paired_log_ratio(causal, prefix):
    """Paired comparison over seeds of two positive errors.

    Returns the geometric-mean ratio causal/prefix with its 95% CI, and the two-sided p-value of a
    paired t-test on log errors (does causal differ from prefix on the same data and seed?).
    """
    logs = np.log(np.asarray(causal, dtype=float)) - np.log(np.asarray(prefix, dtype=float))
    mean, half = mean_ci(logs)
    if len(logs) < 2 or np.allclose(logs, logs[0]):
        p_value = np.nan
    else:
        p_value = scipy_stats.ttest_1samp(logs, 0.0).pvalue
    return np.exp(mean), np.exp(mean - half), np.exp(mean + half), p_value
