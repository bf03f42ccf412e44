"""The Frechet distance against scipy.linalg.sqrtm (the form pytorch-fid uses) and closed forms."""

import warnings

import numpy as np
import pytest
import scipy.linalg

from equilibria.metrics.frechet import Statistics, feature_statistics, frechet_distance


def sqrtm_distance(a: Statistics, b: Statistics) -> float:
    """||mu_1 - mu_2||^2 + tr S_1 + tr S_2 - 2 tr Re sqrtm(S_1 S_2), as pytorch-fid computes it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Matrix is singular" for rank-deficient inputs
        root = scipy.linalg.sqrtm(a.sigma @ b.sigma)
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(root.real))


def correlated_features(rng, n, d, shift=0.0, scale=1.0):
    """n samples of a d-dimensional Gaussian with a random (correlated) covariance."""
    return (rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / np.sqrt(d)) * scale + shift


@pytest.mark.parametrize("n, d", [(500, 16), (2000, 64), (300, 128)])
def test_agrees_with_sqrtm_on_full_rank_statistics(n, d):
    rng = np.random.default_rng(d)
    a = feature_statistics(correlated_features(rng, n, d))
    b = feature_statistics(correlated_features(rng, n, d, shift=0.3, scale=1.5))
    assert frechet_distance(a, b) == pytest.approx(sqrtm_distance(a, b), rel=1e-6)


@pytest.mark.parametrize("n_a, n_b, d", [(40, 60, 64), (10, 10, 64), (2, 5, 32), (100, 300, 128)])
def test_agrees_with_sqrtm_on_rank_deficient_statistics(n_a, n_b, d):
    """Fewer samples than dimensions: covariances of rank n - 1 < d."""
    rng = np.random.default_rng(n_a)
    a = feature_statistics(correlated_features(rng, n_a, d))
    b = feature_statistics(correlated_features(rng, n_b, d, shift=0.1, scale=0.7))
    assert np.linalg.matrix_rank(a.sigma) == min(n_a - 1, d)
    assert frechet_distance(a, b) == pytest.approx(sqrtm_distance(a, b), rel=1e-6)


def test_diagonal_covariances_closed_form():
    """Commuting covariances: d^2 = ||mu_1 - mu_2||^2 + sum_i (sqrt(s1_i) - sqrt(s2_i))^2."""
    rng = np.random.default_rng(1)
    s1, s2 = rng.uniform(0.0, 3.0, 50), rng.uniform(0.0, 3.0, 50)
    s1[:5] = 0.0  # singular
    mu1, mu2 = rng.normal(size=50), rng.normal(size=50)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    got = frechet_distance(Statistics(mu1, np.diag(s1), 10), Statistics(mu2, np.diag(s2), 10))
    assert got == pytest.approx(expected, rel=1e-12)


def test_two_dimensional_closed_form():
    """For 2 x 2 M = S_1 S_2 (non-commuting), tr M^{1/2} = sqrt(tr M + 2 sqrt(det M))."""
    s1 = np.array([[2.0, 0.9], [0.9, 1.0]])
    s2 = np.array([[0.5, -0.2], [-0.2, 1.5]])
    m = s1 @ s2
    trace_root = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    mu1, mu2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_root
    assert frechet_distance(Statistics(mu1, s1, 3), Statistics(mu2, s2, 3)) == pytest.approx(expected, rel=1e-12)


# tr(A^{1/2}) is not Lipschitz at singular A: round-off of size eps in a zero eigenvalue becomes
# sqrt(eps) ~ 1.5e-8 (relative) in its square root. With rank-deficient covariances, results are
# therefore exact to ~1e-8 relative only (scipy's sqrtm is no better: about -1.5e-6 against
# -2.1e-6 here for the rank-29 case below); full-rank ones are exact to round-off.
@pytest.mark.parametrize("n, tolerance", [(1000, 1e-9), (30, 1e-7)])
def test_zero_for_identical_statistics(n, tolerance):
    rng = np.random.default_rng(n)
    a = feature_statistics(correlated_features(rng, n, 64, shift=2.0))
    assert abs(frechet_distance(a, a)) <= tolerance * np.trace(a.sigma)


@pytest.mark.parametrize("n, tolerance", [(1000, 1e-12), (50, 1e-8)])
def test_symmetric(n, tolerance):
    rng = np.random.default_rng(7)
    a = feature_statistics(correlated_features(rng, n, 64))
    b = feature_statistics(correlated_features(rng, 400, 64, shift=0.5, scale=2.0))
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=tolerance)


def test_feature_statistics_are_mean_and_unbiased_covariance():
    x = np.array([[1.0, 2.0], [3.0, 0.0], [2.0, 4.0]])
    stats = feature_statistics(x)
    centred = x - np.array([2.0, 2.0])
    np.testing.assert_allclose(stats.mu, [2.0, 2.0])
    np.testing.assert_allclose(stats.sigma, centred.T @ centred / 2)
    assert stats.count == 3 and stats.sigma.dtype == np.float64


@pytest.mark.parametrize("features", [np.zeros((1, 4)), np.zeros(5), np.zeros((2, 3, 4))])
def test_feature_statistics_reject_bad_shapes(features):
    with pytest.raises(ValueError, match=r"allowed: \(N, D\) with N >= 2"):
        feature_statistics(features)


def test_bad_shapes_are_rejected():
    a = Statistics(np.zeros(3), np.eye(3), 5)
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(a, Statistics(np.zeros(4), np.eye(4), 5))
    inconsistent = Statistics(np.zeros(3), np.eye(4), 5)
    for first, second in ((inconsistent, inconsistent), (a, Statistics(np.zeros(3), np.eye(4), 5)),
                          (Statistics(np.zeros((3, 1)), np.eye(3), 5), a)):
        with pytest.raises(ValueError, match=r"mu \(D,\) and sigma \(D, D\)"):
            frechet_distance(first, second)
