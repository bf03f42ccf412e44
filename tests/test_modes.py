"""Mode coverage on points placed by hand; the stacked-MNIST KL against a hand computation."""

import math

import pytest
import torch

from equilibria.data import load_dataset
from equilibria.metrics.modes import mixture_coverage, stacked_mnist_coverage

CENTERS = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


def test_mixture_coverage_counts_high_quality_samples_by_nearest_mode():
    std = 1.0
    points = torch.tensor([
        [0.5, 0.5],    # mode 0, within 3 std (0.71)
        [2.9, 0.0],    # mode 0, within 3 std (2.9)
        [10.0, 3.1],   # nearest mode 1, but 3.1 std away: not high quality
        [0.0, 12.0],   # mode 2, 2 std away
        [5.0, 5.0],    # far from every mode
    ])
    coverage = mixture_coverage(points, CENTERS, std)
    assert coverage.modes_covered == 2
    assert coverage.high_quality == pytest.approx(3 / 5)
    assert coverage.counts.tolist() == [2, 0, 1]
    # PacGAN's reverse KL of the high-quality histogram (2/3, 0, 1/3) to uniform over 3 modes, by hand
    assert coverage.kl == pytest.approx(2 / 3 * math.log(2 / 3 * 3) + 1 / 3 * math.log(1 / 3 * 3), rel=1e-12)


def test_mixture_kl_is_zero_when_balanced_and_undefined_without_high_quality_samples():
    balanced = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    assert mixture_coverage(balanced, CENTERS, 1.0).kl == pytest.approx(0.0, abs=1e-12)
    assert mixture_coverage(torch.tensor([[5.0, 5.0]]), CENTERS, 1.0).kl is None


def test_mixture_coverage_threshold_on_samples_per_mode():
    points = torch.tensor([[0.1, 0.0], [0.0, 0.1], [10.0, 0.1]])
    assert mixture_coverage(points, CENTERS, 1.0, min_samples=2).modes_covered == 1
    assert mixture_coverage(points, CENTERS, 1.0, min_samples=1).modes_covered == 2


def test_mixture_coverage_of_the_real_ring_covers_every_mode():
    ring = load_dataset("ring", num_samples=2500, seed=0)
    coverage = mixture_coverage(ring.data, ring.centers, ring.std)
    assert coverage.modes_covered == 8
    assert coverage.high_quality > 0.98  # P(chi_2 <= 9) = 1 - exp(-4.5) = 0.989


def test_stacked_kl_matches_a_hand_computation():
    modes = torch.tensor([0, 0, 0, 7, 7, 999])  # p = 1/2, 1/3, 1/6 on three of 1000 modes
    coverage = stacked_mnist_coverage(modes)
    expected = sum(p * math.log(p / (1 / 1000)) for p in (1 / 2, 1 / 3, 1 / 6))
    assert coverage.kl == pytest.approx(expected, rel=1e-12)
    assert coverage.modes_covered == 3
    assert coverage.counts[[0, 7, 999]].tolist() == [3, 2, 1]


def test_stacked_kl_of_a_uniform_histogram_is_zero_and_of_one_mode_is_log_m():
    assert stacked_mnist_coverage(torch.arange(1000).repeat(3)).kl == pytest.approx(0.0, abs=1e-12)
    assert stacked_mnist_coverage(torch.full((50,), 123)).kl == pytest.approx(math.log(1000))


def test_stacked_coverage_rejects_modes_out_of_range():
    with pytest.raises(ValueError, match=r"modes: values span 0\.\.1000; allowed: 0\.\.999"):
        stacked_mnist_coverage(torch.tensor([0, 1000]))
