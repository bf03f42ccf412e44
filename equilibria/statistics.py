"""Confidence intervals, differences and verdicts over seeds, for experiment reports.

A group's value (its best or final metric) is summarised by the mean over its seeds with a 95%
bias-corrected and accelerated (BCa) bootstrap interval (``scipy.stats.bootstrap``). Two groups are
compared by the difference of their means, with a BCa bootstrap interval resampling each group's
seeds independently, and Welch's t-test (unequal variances, ``scipy.stats.ttest_ind``). A claim
that a method improves on its baseline **holds** when the whole interval of the difference lies on
the better side of zero and Welch's test rejects equal means at 5%, **fails** when both say the
method is worse, and is **undecided** (at the power these seeds give) otherwise.

Shares of failed runs (a run fails when its final value is worse than a threshold: the lens
paper's stability claim) get exact Clopper-Pearson intervals (``scipy.stats.binomtest``), and two
groups' shares are compared by Fisher's exact test (``scipy.stats.fisher_exact``): fewer failures
**holds** when the test rejects equal shares at 5%, more failures **fails**, else **undecided**.

A verdict on runs still improving at their end may be a verdict on the training budget, not on the
method at convergence. So a claim is decided only when the group behind (the baseline when the
method holds, the method when it fails) could not close the gap by training as long again
(``could_close_gap``): at the fastest rate of improvement that the 95% interval of its change over
the last quarter of the steps allows, kept up for four more quarters, it would still be behind
(for best values, the change of the best so far).
Rates of improvement slow down, so this extrapolation favours the group behind. The group ahead may
still be improving: that only widens the gap.

Both are asked because with few seeds a bootstrap interval is too narrow (with 5 seeds, about the
coverage of a 90% interval; with 2 it spans just the two values), while the t-test does not
resample; the reports say how many seeds each result rests on.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
RESAMPLES = 9999
VERDICTS = ("holds", "fails", "undecided")


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` values and its confidence interval (nan with fewer than 2 values)."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Comparison:
    """mean(a) - mean(b) with its interval, Welch's p-value and the verdict for "a is better"."""

    difference: float
    low: float
    high: float
    p_value: float
    verdict: str


def _values(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or not array.size or not np.isfinite(array).all():
        raise ValueError(f"{name}: got {list(values)!r}; allowed: a non-empty list of finite numbers")
    return array


def _bootstrap(samples: tuple[np.ndarray, ...], statistic, seed: int) -> tuple[float, float]:
    if any(len(s) < 2 for s in samples):
        return math.nan, math.nan
    if all(np.ptp(s) == 0 for s in samples):  # no spread: the interval is the point
        value = float(statistic(*samples, axis=-1))
        return value, value
    for method in ("BCa", "percentile"):  # BCa is undefined (nan) when the spread is rounding error
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            result = stats.bootstrap(samples, statistic, confidence_level=LEVEL, n_resamples=RESAMPLES, method=method,
                                     random_state=np.random.default_rng(seed))
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if not (math.isnan(low) or math.isnan(high)):
            break
    return low, high


def mean_interval(values: Sequence[float], seed: int = 0) -> Interval:
    """The mean of ``values`` (one per seed) with its 95% BCa bootstrap interval."""
    array = _values(values, "values")
    low, high = _bootstrap((array,), np.mean, seed)
    return Interval(float(array.mean()), low, high, len(array))


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def compare(a: Sequence[float], b: Sequence[float], lower_is_better: bool, seed: int = 0) -> Comparison:
    """Group ``a`` (a method) against ``b`` (its baseline), one value per seed in each."""
    a, b = _values(a, "a"), _values(b, "b")
    low, high = _bootstrap((a, b), _mean_difference, seed)
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        p_value = math.nan
    else:
        with warnings.catch_warnings():  # a group of equal values (every seed 8 modes): its variance is exactly 0
            warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
            p_value = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return Comparison(float(a.mean() - b.mean()), low, high, p_value, verdict(low, high, p_value, lower_is_better))


def compare_paired(a: Sequence[float], b: Sequence[float], lower_is_better: bool, seed: int = 0) -> Comparison:
    """Paired values (one pair per seed, e.g. the same checkpoint trained two ways): the mean of the
    differences a - b with its BCa bootstrap interval, the paired t-test and the verdict on "a better"."""
    a, b = _values(a, "a"), _values(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a, b: got {len(a)} and {len(b)} values; allowed: one pair per seed (equal lengths)")
    differences = mean_interval(a - b, seed)
    p_value = math.nan if len(a) < 2 or np.ptp(a - b) == 0 else float(stats.ttest_rel(a, b).pvalue)
    return Comparison(differences.mean, differences.low, differences.high, p_value,
                      verdict(differences.low, differences.high, p_value, lower_is_better))


def verdict(low: float, high: float, p_value: float, lower_is_better: bool, alpha: float = 0.05) -> str:
    """"holds" when the interval of (method - baseline) lies wholly on the better side of zero and
    Welch's ``p_value`` is below ``alpha``, "fails" when the same holds on the worse side, else
    "undecided" (also without an interval or a p-value)."""
    if math.isnan(low) or math.isnan(high) or math.isnan(p_value) or not p_value < alpha:
        return "undecided"
    better, worse = (high < 0, low > 0) if lower_is_better else (low > 0, high < 0)
    return "holds" if better else "fails" if worse else "undecided"


def could_close_gap(changes: Sequence[float], gap: float, lower_is_better: bool, quarters: float = 4.0) -> bool:
    """Whether a group behind by ``gap`` could close it in ``quarters`` more quarters of its steps (4:
    as long again as it ran), improving at the fastest rate that the 95% interval of the mean of
    ``changes`` allows (one per seed: the final value minus the value at 3/4 of the steps). False when
    that interval holds 0 (the group is at its plateau) or with fewer than 2 seeds (no interval)."""
    interval = mean_interval(changes)
    improving = interval.high < 0 if lower_is_better else interval.low > 0  # False without an interval (nan)
    fastest = -interval.low if lower_is_better else interval.high  # the largest improvement per quarter
    return improving and quarters * fastest >= abs(gap)


def verdict_at_plateau(comparison: Comparison, a_changes: Sequence[float], b_changes: Sequence[float],
                       lower_is_better: bool) -> tuple[str, str | None]:
    """(verdict, the group that could close the gap): ``comparison.verdict`` and None, unless the
    comparison holds or fails while the group behind (``b`` when ``a`` holds, ``a`` when it fails)
    could close the gap by training as long again (``could_close_gap`` on its ``*_changes``): then
    "undecided" and "a" or "b"."""
    behind = {"holds": ("b", b_changes), "fails": ("a", a_changes)}.get(comparison.verdict)
    if behind is not None and could_close_gap(behind[1], comparison.difference, lower_is_better):
        return "undecided", behind[0]
    return comparison.verdict, None


@dataclass(frozen=True)
class Share:
    """``failed`` of ``n`` runs, with the share's exact (Clopper-Pearson) 95% interval."""

    failed: int
    n: int
    low: float
    high: float


def share_interval(failed: int, n: int) -> Share:
    """The share of failed runs with its exact 95% interval."""
    if not 0 <= failed <= n or n < 1:
        raise ValueError(f"failed, n: got {failed}, {n}; allowed: 0 <= failed <= n, n >= 1")
    ci = stats.binomtest(failed, n).proportion_ci(confidence_level=LEVEL, method="exact")
    return Share(failed, n, float(ci.low), float(ci.high))


def compare_failures(a: Share, b: Share, alpha: float = 0.05) -> tuple[float, str]:
    """Fisher's exact test of group ``a``'s share of failed runs against ``b``'s (two-sided p), and
    the verdict on "a fails less often"."""
    table = [[a.failed, a.n - a.failed], [b.failed, b.n - b.failed]]
    p_value = float(stats.fisher_exact(table).pvalue)
    if not p_value < alpha:
        return p_value, "undecided"
    return p_value, "holds" if a.failed / a.n < b.failed / b.n else "fails"


def compare_times(a: Sequence[float], b: Sequence[float], seed: int = 0) -> Comparison:
    """Times (steps or seconds) to reach a level, one per run of method ``a`` and of baseline ``b``; inf
    for a run that never reached it. The log of the ratio of the median times (``comparison_text``
    shows it as "x ratio"), its 95% percentile bootstrap interval (each group's runs resampled; a
    resample in which neither median is reached counts as no difference), the two-sided Mann-Whitney
    U test (the runs that never reached tie above all others: Gehan's test when every run stops at the
    same time) and the verdict on "a is faster"."""
    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    for name, values in (("a", a), ("b", b)):
        if values.ndim != 1 or not values.size or np.isnan(values).any() or (values <= 0).any():
            raise ValueError(f"{name}: got {values.tolist()!r}; allowed: a non-empty list of times > 0 (inf: never "
                             "reached)")

    def log_ratio(median_a: np.ndarray, median_b: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            ratio = np.log(median_a) - np.log(median_b)
        return np.where(np.isnan(ratio), 0.0, ratio)  # neither reached: no difference

    difference = float(log_ratio(np.median(a), np.median(b)))
    if len(a) < 2 or len(b) < 2:
        low = high = p_value = math.nan
    else:
        rng = np.random.default_rng(seed)
        resampled = log_ratio(np.median(a[rng.integers(0, len(a), (RESAMPLES, len(a)))], axis=1),
                              np.median(b[rng.integers(0, len(b), (RESAMPLES, len(b)))], axis=1))
        low = float(np.percentile(resampled, 100 * (1 - LEVEL) / 2, method="lower"))
        high = float(np.percentile(resampled, 100 * (1 + LEVEL) / 2, method="higher"))
        p_value = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return Comparison(difference, low, high, p_value, verdict(low, high, p_value, lower_is_better=True))

