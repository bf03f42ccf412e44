"""The Frechet distance between Gaussians fitted to features (FID, Heusel et al. 2017).

    d^2 = ||mu_1 - mu_2||^2 + tr(S_1) + tr(S_2) - 2 tr((S_1^{1/2} S_2 S_1^{1/2})^{1/2})

The trace of the matrix square root is computed from eigenvalues, in float64: with
S_1 = U diag(l) U^T, A = S_1^{1/2} S_2 S_1^{1/2} is symmetric positive semi-definite and
tr(A^{1/2}) = sum_i sqrt(eig_i(A)). This equals tr((S_1 S_2)^{1/2}), the form scipy.linalg.sqrtm
is usually applied to, without its slow non-symmetric path; negative round-off eigenvalues of
near-singular covariances are clipped to 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Statistics:
    """Mean and covariance of a set of features (float64), and how many features made them."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int


def feature_statistics(features: torch.Tensor | np.ndarray) -> Statistics:
    """Mean and unbiased covariance of features (N, D), in float64."""
    x = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features: got shape {tuple(x.shape)}; allowed: (N, D) with N >= 2")
    return Statistics(x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1]), x.shape[0])


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _check_shapes(stats: Statistics, which: str) -> None:
    mu, sigma = np.shape(stats.mu), np.shape(stats.sigma)
    if len(mu) != 1 or sigma != (mu[0], mu[0]):
        raise ValueError(f"statistics {which}: mu {mu} and sigma {sigma}; allowed: mu (D,) and sigma (D, D)")


def frechet_distance(a: Statistics, b: Statistics) -> float:
    """The squared Frechet distance between N(a.mu, a.sigma) and N(b.mu, b.sigma)."""
    _check_shapes(a, "a")
    _check_shapes(b, "b")
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"statistics: feature sizes differ ({a.mu.shape[0]} and {b.mu.shape[0]}); "
                         "allowed: statistics of the same extractor")
    root = _sqrt_psd(a.sigma)
    inner = root @ b.sigma @ root
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None)).sum()
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * trace_sqrt)
