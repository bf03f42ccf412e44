"""ICR Figure 5: a discriminator started from a classifier, trained against fixed generators."""

import math

import pytest
import torch
from test_trainer import Disc, flat
from torch import nn

from equilibria.analysis.icr_fresh_discriminator import (classifier_start, fresh_discriminator, learning_curve,
                                                         learning_rate, real_fake_accuracy, reinitialised,
                                                         score_layer)


def clusters(n, seed):
    """Ten well separated 2-D clusters on a circle of radius 3, labelled by cluster."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(10, (n,), generator=g)
    angles = 2 * math.pi * labels / 10
    points = 3 * torch.stack([angles.cos(), angles.sin()], 1) + 0.1 * torch.randn(n, 2, generator=g)
    return points, labels


def test_score_layer_is_the_last_one_output_layer():
    d = Disc()
    assert score_layer(d) is d[2]
    with pytest.raises(ValueError, match="its last layer has 3 outputs; allowed: one"):
        score_layer(nn.Sequential(nn.Linear(2, 3)))
    with pytest.raises(ValueError, match="has no Linear or Conv2d"):
        score_layer(nn.Sequential(nn.Tanh()))


def test_classifier_start_learns_the_classes_through_the_body_and_leaves_the_score_layer():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1), nn.Flatten(0))
    images, labels = clusters(2000, 1)
    state = torch.random.get_rng_state()
    network, accuracy = classifier_start(d, images, labels, steps=400, lr=1e-2, seed=3, test=clusters(500, 2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert accuracy > 0.9  # chance: 0.1
    start = reinitialised(d, 3)
    assert torch.equal(network[2].weight, start[2].weight)  # the score layer took no gradient
    assert not torch.equal(network[0].weight, start[0].weight)
    again, _ = classifier_start(d, images, labels, steps=400, lr=1e-2, seed=3)
    assert torch.equal(flat(again), flat(network))


def test_fresh_discriminator_redraws_only_the_score_layer():
    start = Disc()
    fresh = fresh_discriminator(start, seed=5)
    assert torch.equal(fresh[0].weight, start[0].weight)
    assert not torch.equal(fresh[2].weight, start[2].weight)
    assert torch.equal(flat(fresh_discriminator(start, seed=5)), flat(fresh))


def test_real_fake_accuracy_by_hand():
    d = nn.Sequential(nn.Linear(1, 1), nn.Flatten(0))
    with torch.no_grad():
        d[0].weight.fill_(1.0)
        d[0].bias.fill_(0.0)
    real = torch.tensor([[1.0], [2.0], [-1.0], [3.0]])  # 3 of 4 scored real
    fake = torch.tensor([[-1.0], [0.5]])  # 1 of 2 scored generated
    assert real_fake_accuracy(d, real, fake) == pytest.approx(0.5 * (0.75 + 0.5))


def test_learning_curve_rises_against_a_visible_difference_and_not_against_none():
    torch.manual_seed(0)
    d = Disc()
    real, _ = clusters(1000, 1)
    test_real, _ = clusters(300, 2)
    g = torch.Generator().manual_seed(7)

    def same(n):
        return clusters(n, int(torch.randint(10**6, (1,), generator=g)))[0]

    def shifted(n):
        return same(n) + torch.tensor([10.0, 10.0])

    kwargs = dict(test_real=test_real, steps=150, every=50, lr=1e-2)
    before = flat(d).clone()
    easy = learning_curve(d, real, shifted, test_fake=test_real + torch.tensor([10.0, 10.0]), **kwargs)
    none = learning_curve(d, real, same, test_fake=clusters(300, 3)[0], **kwargs)
    assert [r["step"] for r in easy] == [0, 50, 100, 150]
    assert easy[-1]["accuracy"] > 0.9
    assert abs(none[-1]["accuracy"] - 0.5) < 0.15
    assert learning_rate(easy) > learning_rate(none)
    assert torch.equal(flat(d), before)  # trained a copy


def test_learning_rate_is_the_mean_area_under_the_curve():
    rows = [{"step": 0, "accuracy": 0.5}, {"step": 10, "accuracy": 0.7}, {"step": 30, "accuracy": 0.9}]
    assert learning_rate(rows) == pytest.approx((10 * 0.6 + 20 * 0.8) / 30)
    with pytest.raises(ValueError, match="two measurements"):
        learning_rate(rows[:1])


def test_bad_arguments():
    images, labels = clusters(10, 0)
    with pytest.raises(ValueError, match="steps and batch_size"):
        classifier_start(Disc(), images, labels, steps=0)
    with pytest.raises(ValueError, match="labels"):
        classifier_start(Disc(), images, labels + 10, steps=1)
    with pytest.raises(ValueError, match="steps, every and batch_size"):
        learning_curve(Disc(), images, lambda n: images[:n], test_real=images, test_fake=images, steps=1, every=0)
