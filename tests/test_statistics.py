"""Intervals over seeds, group differences and verdicts (equilibria.statistics), checked against
simulation (coverage of the true mean), a hand computation of Welch's test, and hand-made cases."""

import math

import numpy as np
import pytest
from scipy import stats

from equilibria.statistics import (Interval, compare, compare_failures, compare_paired, compare_times, could_close_gap,
                                   mean_interval, share_interval, verdict, verdict_at_plateau)


def test_the_mean_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    covered = 0
    trials = 150
    for trial in range(trials):
        i = mean_interval(rng.normal(3.0, 2.0, size=20), seed=trial)
        covered += i.low <= 3.0 <= i.high
    # BCa at n=20 covers a little under 95%; 150 trials: binomial sd about 1.8 points
    assert 0.87 <= covered / trials <= 0.99


def test_the_interval_of_identical_values_is_the_point_and_of_one_value_undefined():
    assert mean_interval([2.5, 2.5, 2.5]) == Interval(2.5, 2.5, 2.5, 3)
    one = mean_interval([4.0])
    assert one.mean == 4.0 and math.isnan(one.low) and math.isnan(one.high) and one.n == 1


def test_values_equal_but_for_rounding_get_an_interval_not_nan():
    """(8 + j) - (11 + j) is -3 give or take an ulp: BCa is undefined there, the percentile interval is not."""
    values = [(8 + j) - (11 + j) for j in (0.0, 0.3, -0.2, 0.1, -0.1)]
    assert np.ptp(values) > 0  # the rounding is there
    i = mean_interval(values)
    assert -3 - 1e-12 <= i.low <= i.high <= -3 + 1e-12
    assert compare(values, [0.0, 0.1, 0.2, 0.1, 0.0], lower_is_better=True).high < 0


def test_welch_p_value_by_hand():
    a, b = [10.0, 12.0, 11.0, 13.0, 9.0], [14.0, 15.0, 13.5, 16.0, 17.0, 15.5]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))  # Welch-Satterthwaite
    p = 2 * stats.t.sf(abs(t), df)
    c = compare(a, b, lower_is_better=True)
    assert c.p_value == pytest.approx(p, rel=1e-9)
    assert c.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert c.low < c.difference < c.high < 0 and c.verdict == "holds"  # a is lower, and lower is better


def test_welch_p_value_against_a_group_of_equal_values_by_hand_and_without_a_warning(recwarn):
    a, b = [8.0] * 10, [8.0, 8.0, 1.0, 8.0, 7.0, 8.0, 8.0, 6.0, 8.0, 3.0]
    vb = np.var(b, ddof=1) / len(b)  # a's variance is 0, so Welch's df is b's n - 1
    p = 2 * stats.t.sf(abs((np.mean(a) - np.mean(b)) / math.sqrt(vb)), len(b) - 1)
    assert compare(a, b, lower_is_better=False).p_value == pytest.approx(p, rel=1e-9)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_verdicts_of_separated_reversed_and_overlapping_groups():
    rng = np.random.default_rng(0)
    good, bad = rng.normal(10, 1, 10), rng.normal(20, 1, 10)
    assert compare(good, bad, lower_is_better=True).verdict == "holds"
    assert compare(bad, good, lower_is_better=True).verdict == "fails"
    assert compare(bad, good, lower_is_better=False).verdict == "holds"  # higher is better (modes, IS)
    same = compare(rng.normal(10, 1, 5), rng.normal(10, 1, 5), lower_is_better=True)
    assert same.low < 0 < same.high and same.verdict == "undecided"


@pytest.mark.parametrize("low, high, p, lower, expected", [
    (-2.0, -1.0, 0.01, True, "holds"), (1.0, 2.0, 0.01, True, "fails"), (-1.0, 1.0, 0.01, True, "undecided"),
    (1.0, 2.0, 0.01, False, "holds"), (-2.0, -1.0, 0.01, False, "fails"),
    (math.nan, math.nan, 0.01, True, "undecided"),
    (-2.0, -1.0, 0.2, True, "undecided"),  # the interval excludes 0 but the t-test does not reject
    (-2.0, -1.0, math.nan, True, "undecided"),
])
def test_verdict_from_an_interval_and_a_p_value(low, high, p, lower, expected):
    assert verdict(low, high, p, lower) == expected


def test_two_seeds_each_decide_nothing_however_far_apart():
    c = compare([30.0, 20.0], [40.0, 45.0], lower_is_better=True)
    assert c.high < 0 and c.p_value > 0.05 and c.verdict == "undecided"


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match=r"values: got \[\]; allowed: a non-empty list of finite numbers"):
        mean_interval([])
    with pytest.raises(ValueError, match="a: got .*nan.*; allowed"):
        compare([1.0, math.nan], [1.0, 2.0], True)


def test_clopper_pearson_interval_by_hand():
    # exact bounds: the Beta quantiles Beta(0.025; k, n-k+1) and Beta(0.975; k+1, n-k)
    s = share_interval(3, 10)
    assert s.low == pytest.approx(stats.beta.ppf(0.025, 3, 8), rel=1e-9)
    assert s.high == pytest.approx(stats.beta.ppf(0.975, 4, 7), rel=1e-9)
    assert share_interval(0, 5).low == 0.0 and share_interval(5, 5).high == 1.0


def test_fisher_test_of_failure_shares_by_hand():
    # 0 of 10 against 6 of 10: two-sided p = sum of hypergeometric probabilities <= that of the table
    a, b = share_interval(0, 10), share_interval(6, 10)
    probabilities = [math.comb(10, k) * math.comb(10, 6 - k) / math.comb(20, 6) for k in range(7)]
    p = sum(q for q in probabilities if q <= probabilities[0] * (1 + 1e-7))
    p_value, verdict_ = compare_failures(a, b)
    assert p_value == pytest.approx(p, rel=1e-9) and p < 0.05 and verdict_ == "holds"
    assert compare_failures(b, a)[1] == "fails"
    assert compare_failures(share_interval(1, 5), share_interval(2, 5))[1] == "undecided"
    with pytest.raises(ValueError, match="failed, n: got 6, 5"):
        share_interval(6, 5)


def test_paired_comparison_by_hand():
    a = [3.1, 2.9, 3.6, 3.3, 3.0, 3.4]
    b = [2.0, 2.2, 2.1, 2.6, 1.9, 2.4]
    d = np.subtract(a, b)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    p = 2 * stats.t.sf(abs(t), len(d) - 1)
    c = compare_paired(a, b, lower_is_better=False)  # a larger is "better" (moves further)
    assert c.difference == pytest.approx(d.mean()) and c.p_value == pytest.approx(p, rel=1e-9)
    assert 0 < c.low < c.difference < c.high and c.verdict == "holds"
    with pytest.raises(ValueError, match="one pair per seed"):
        compare_paired([1.0, 2.0], [1.0], True)


def test_a_group_could_close_the_gap_at_its_fastest_rate_over_four_more_quarters():
    # no spread: the interval is the point, so the fastest rate is 2 a quarter and 4 quarters close 8
    assert could_close_gap([-2.0, -2.0, -2.0], 7.9, lower_is_better=True)
    assert not could_close_gap([-2.0, -2.0, -2.0], 8.1, lower_is_better=True)
    assert could_close_gap([2.0, 2.0], -7.9, lower_is_better=False)  # higher is better: the sign of the gap is moot
    # with spread the interval's far end lies between the mean (-1.425) and the fastest seed (-2)
    falling = [-1.0, -2.0, -1.5, -1.2]
    assert could_close_gap(falling, 4 * 1.425, lower_is_better=True)
    assert not could_close_gap(falling, 4 * 2.0 + 0.01, lower_is_better=True)
    assert not could_close_gap([-3.0, 2.0, -1.0, 1.5], 0.1, lower_is_better=True)  # both signs: at its plateau
    assert not could_close_gap([-3.0, -2.0, -4.0], 0.1, lower_is_better=False)  # falling is not improving
    assert not could_close_gap([-5.0], 0.1, lower_is_better=True)  # one seed: no interval


def test_verdict_at_plateau_asks_the_group_behind():
    holds = compare([1.0, 1.1, 0.9, 1.05], [5.0, 5.2, 4.9, 5.1], lower_is_better=True)  # a ahead by about 4
    assert holds.verdict == "holds"
    fast, slow, flat = [-1.0, -2.0, -1.5, -1.2], [-0.1, -0.2, -0.15, -0.12], [0.1, -0.2, 0.05, -0.1]
    assert verdict_at_plateau(holds, fast, flat, True) == ("holds", None)  # a (ahead) still improves
    assert verdict_at_plateau(holds, flat, fast, True) == ("undecided", "b")  # b (behind) could close 4
    assert verdict_at_plateau(holds, flat, slow, True) == ("holds", None)  # b improves, at most 0.8 in 4 quarters
    fails = compare([5.0, 5.2, 4.9, 5.1], [1.0, 1.1, 0.9, 1.05], lower_is_better=True)
    assert verdict_at_plateau(fails, fast, flat, True) == ("undecided", "a")
    assert verdict_at_plateau(fails, flat, fast, True) == ("fails", None)
    undecided = compare([1.0, 5.0, 3.0], [2.0, 4.0, 3.5], lower_is_better=True)
    assert verdict_at_plateau(undecided, fast, fast, True) == ("undecided", None)


def test_times_to_reach_by_hand():
    """Medians 3 and 30: ratio 0.1. Five against five wholly separated: the exact two-sided Mann-Whitney p
    is 2 / C(10, 5) = 2 / 252; every resample's medians lie in [1, 5] and [10, 50]."""
    c = compare_times([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    assert math.exp(c.difference) == pytest.approx(0.1)
    assert c.p_value == pytest.approx(2 / 252)
    assert math.log(1 / 50) <= c.low < c.difference < c.high <= math.log(5 / 10) and c.verdict == "holds"
    assert compare_times([10, 20, 30], [1, 2, 3]).difference == pytest.approx(math.log(10))


def test_runs_that_never_reach_tie_above_every_run_that_did():
    """[1, 2, 3] against three runs that never got there: U = 0, and with the three tied the normal
    approximation with tie correction: mean 4.5, variance 9/12 (7 - 24/30) = 4.65, continuity 0.5."""
    c = compare_times([1, 2, 3], [math.inf] * 3)
    z = (0 - 4.5 + 0.5) / math.sqrt(4.65)
    assert c.difference == -math.inf and c.p_value == pytest.approx(math.erfc(-z / math.sqrt(2)))
    assert c.verdict == "undecided"  # p 0.064 at three seeds each
    never = compare_times([math.inf] * 3, [math.inf] * 3)
    assert (never.difference, never.p_value, never.verdict) == (0.0, 1.0, "undecided")
    assert math.isnan(compare_times([1.0], [2.0, 3.0]).low)  # one run: no interval


@pytest.mark.parametrize("bad", [[], [0.0, 1.0], [-1.0], [math.nan]])
def test_bad_times_are_refused(bad):
    with pytest.raises(ValueError, match=r"a: got .*; allowed: a non-empty list of times > 0 \(inf: never reached\)"):
        compare_times(bad, [1.0])
