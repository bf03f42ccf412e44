"""IS, KID and precision/recall against hand computations and naive implementations."""

import math

import numpy as np
import pytest
import torch

from equilibria.metrics.scores import inception_score, kernel_inception_distance, precision_recall


def test_inception_score_of_uniform_predictions_is_one():
    mean, std = inception_score(torch.zeros(100, 7), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("classes", [2, 5, 10])
def test_inception_score_of_confident_predictions_spread_evenly_is_the_class_count(classes):
    labels = torch.arange(10 * classes * 3) % classes  # each split holds every class equally often
    logits = 60.0 * torch.nn.functional.one_hot(labels, classes).double()
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(classes, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("n, bounds", [(12, (0, 4, 8, 12)), (13, (0, 4, 8, 13)), (14, (0, 4, 9, 14))])
def test_inception_score_matches_a_hand_computation_per_split(n, bounds):
    # the splits of the authors' code (improved-gan): samples i*N//splits up to (i+1)*N//splits
    torch.manual_seed(0)
    logits = torch.randn(n, 4, dtype=torch.float64) * 3
    p = torch.softmax(logits, dim=1).numpy()
    scores = []
    for chunk in (p[bounds[i]:bounds[i + 1]] for i in range(3)):
        marginal = chunk.mean(axis=0)
        kl = np.mean([sum(q[j] * math.log(q[j] / marginal[j]) for j in range(4)) for q in chunk])
        scores.append(math.exp(kl))
    mean, std = inception_score(logits, splits=3)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert std == pytest.approx(np.std(scores), rel=1e-9)


def test_inception_score_is_stable_for_huge_logits():
    logits = torch.tensor([[1e4, 0.0], [0.0, 1e4]] * 5, dtype=torch.float32)
    mean, _ = inception_score(logits, splits=1)
    assert mean == pytest.approx(2.0, rel=1e-9)


def test_inception_score_rejects_more_splits_than_samples():
    with pytest.raises(ValueError, match=r"splits: got 10; allowed: 1\.\.5"):
        inception_score(torch.zeros(5, 3), splits=10)


def naive_polynomial_mmd2(x, y):
    m, d = x.shape
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_a_naive_double_loop_on_the_same_subsets():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(30, 5)), rng.normal(0.5, 1.2, size=(25, 5))
    mean, std = kernel_inception_distance(a, b, subsets=4, subset_size=12, seed=3)
    draw = np.random.default_rng(3)  # the same subsets, in the same order: a's, then b's
    values = [naive_polynomial_mmd2(a[draw.choice(30, 12, replace=False)], b[draw.choice(25, 12, replace=False)])
              for _ in range(4)]
    assert mean == pytest.approx(np.mean(values), rel=1e-10)
    assert std == pytest.approx(np.std(values), rel=1e-8)


def test_kid_of_full_sets_equals_the_naive_estimate():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(15, 3)), rng.normal(size=(15, 3)) + 1
    mean, std = kernel_inception_distance(a, b, subsets=3, subset_size=15)
    assert mean == pytest.approx(naive_polynomial_mmd2(a, b), rel=1e-10)  # every subset is the whole set
    assert std == pytest.approx(0.0, abs=1e-10)


def test_kid_names_the_option_and_the_counts_when_a_set_is_too_small():
    with pytest.raises(ValueError, match=r"kid subset_size: got 1000, but the sets have 1200 and 800 samples"):
        kernel_inception_distance(np.zeros((1200, 4)), np.zeros((800, 4)))


def test_precision_recall_of_identical_sets_is_one():
    x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x.clone(), k=3) == (1.0, 1.0)


def test_precision_recall_of_far_apart_sets_is_zero():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(100, 4, generator=g), torch.randn(120, 4, generator=g) + 100.0
    assert precision_recall(real, fake, k=3, chunk_size=7) == (0.0, 0.0)


def test_precision_recall_on_points_placed_by_hand():
    # real: 0, 1, 2, 3 on a line; k = 1 radii: 1 each. fake: 0.5 (inside), 10 and 11 (outside real).
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[0.5], [10.0], [11.0]])
    precision, recall = precision_recall(real, fake, k=1)
    # fake radii (k = 1): 0.5 -> 9.5, 10 -> 1, 11 -> 1; real points within 9.5 of 0.5: all four
    assert precision == pytest.approx(1 / 3)
    assert recall == pytest.approx(1.0)


def test_precision_recall_rejects_k_not_below_the_set_size():
    with pytest.raises(ValueError, match=r"pr k: got 5"):
        precision_recall(torch.zeros(5, 2), torch.zeros(9, 2), k=5)
