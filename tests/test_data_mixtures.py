import math

import numpy as np
import pytest

from equilibria.data.mixtures import grid, ring


def _check_mixture(dataset, expected_centers, std, n):
    data, labels = dataset.data.double().numpy(), dataset.labels.numpy()
    k = len(expected_centers)
    assert dataset.kind == "points" and dataset.num_modes == k and dataset.std == std
    assert data.shape == (n, 2) and dataset.data.dtype.is_floating_point
    np.testing.assert_allclose(dataset.centers.numpy(), expected_centers, atol=1e-6)
    counts = np.bincount(labels, minlength=k)
    # Uniform components: each share within 5 binomial standard deviations of 1/k.
    sigma = math.sqrt(n * (1 / k) * (1 - 1 / k))
    assert np.all(np.abs(counts - n / k) < 5 * sigma), counts
    for j, center in enumerate(expected_centers):
        points = data[labels == j]
        np.testing.assert_allclose(points.mean(axis=0), center, atol=5 * std / math.sqrt(len(points)))
        np.testing.assert_allclose(points.std(axis=0), [std, std], rtol=0.05)
    # Every point lies nearest to its own component's centre.
    nearest = np.linalg.norm(data[:, None] - expected_centers[None], axis=2).argmin(axis=1)
    assert np.array_equal(nearest, labels)


def test_ring_modes_std_and_shares():
    n = 40_000
    angles = 2 * np.pi * np.arange(8) / 8
    expected = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    _check_mixture(ring(n, seed=1), expected, 0.02, n)


def test_grid_modes_std_and_shares():
    n = 50_000
    values = [-4.0, -2.0, 0.0, 2.0, 4.0]
    expected = np.array([[x, y] for x in values for y in values])
    dataset = grid(n, seed=2)
    assert {tuple(c) for c in dataset.centers.tolist()} == {tuple(c) for c in expected.tolist()}
    _check_mixture(dataset, expected, 0.05, n)


def test_mixtures_are_reproducible_from_seed():
    assert ring(100, seed=3).data.equal(ring(100, seed=3).data)
    assert not grid(100, seed=3).data.equal(grid(100, seed=4).data)


def test_mixture_argument_errors():
    with pytest.raises(ValueError, match="ring: n must be > 0, got 0"):
        ring(0, seed=0)
    with pytest.raises(ValueError, match="grid: std must be > 0, got -1"):
        grid(10, seed=0, std=-1)
