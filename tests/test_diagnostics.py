"""Discriminator diagnostics against hand computations and gradients written out by hand."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from equilibria.metrics.diagnostics import (advas_quantity, fake_gradient_norm, output_drift, output_statistics,
                                            trainer_advas_quantity)
from equilibria.core.objectives import get_objective
from equilibria.core.penalties import gradient_penalty


def test_advas_quantity_of_a_logistic_discriminator_matches_the_gradient_written_out():
    # D(x) = w.x + b with the minimax adversary loss L = E softplus(-D(real)) + E softplus(D(fake)):
    # dL/dw = -E sigmoid(-D(r)) r + E sigmoid(D(f)) f,  dL/db = -E sigmoid(-D(r)) + E sigmoid(D(f))
    torch.manual_seed(0)
    d = nn.Linear(3, 1).double()
    real, fake = torch.randn(6, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    loss = get_objective("minimax").adversary_loss
    value = advas_quantity(d, lambda r, f: loss(d(r).squeeze(1), d(f).squeeze(1)), real, fake)
    with torch.no_grad():
        sr, sf = torch.sigmoid(-d(real)), torch.sigmoid(d(fake))
        grad_w = -(sr * real).mean(0) + (sf * fake).mean(0)
        grad_b = -sr.mean() + sf.mean()
    assert value == pytest.approx((grad_w.pow(2).sum() + grad_b ** 2).item(), rel=1e-12)
    assert d.weight.grad is None  # no .grad written


def test_advas_quantity_with_a_penalty_matches_finite_differences_and_keeps_the_random_state():
    torch.manual_seed(1)
    d = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1), nn.Flatten(0)).double()
    real = torch.randn(4, 2, dtype=torch.float64)
    wgan = get_objective("wgan").adversary_loss
    # real == fake makes the penalty's random interpolates deterministic
    loss = lambda r, f: wgan(d(r), d(f)) + 10 * gradient_penalty(d, r, f)  # noqa: E731
    state = torch.get_rng_state()
    value = advas_quantity(d, loss, real, real.clone())
    assert torch.equal(torch.get_rng_state(), state)
    h, total = 1e-6, 0.0
    for p in d.parameters():
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            flat[i] += h
            plus = loss(real, real.clone()).item()
            flat[i] -= 2 * h
            minus = loss(real, real.clone()).item()
            flat[i] += h
            total += ((plus - minus) / (2 * h)) ** 2
    assert value == pytest.approx(total, rel=1e-6)


def test_trainer_advas_quantity_uses_the_trainers_adversary_loss():
    class FakeTrainer:
        discriminator = nn.Linear(2, 1, bias=False)

        def adversary_loss(self, real, fake):
            total = (self.discriminator(real) - self.discriminator(fake)).sum()
            return total, {"objective": total}

    trainer = FakeTrainer()
    with torch.no_grad():
        trainer.discriminator.weight.copy_(torch.tensor([[1.0, 2.0]]))
    real, fake = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 0.0]])
    # gradient in w: sum(real) - sum(fake) = (1, 1)
    assert trainer_advas_quantity(trainer, real, fake) == pytest.approx(2.0)


def test_output_statistics_against_numpy():
    d = nn.Sequential(nn.Flatten(0))  # D(x) = x for (N, 1) inputs
    real = torch.tensor([[1.0], [2.0], [3.0], [30.0]])
    fake = torch.tensor([[-1.0], [-1.5], [-25.0]])
    edges = np.linspace(-4, 4, 9)
    stats = output_statistics(d, real, fake, edges)
    assert stats.mean_real == pytest.approx(9.0)
    assert stats.var_real == pytest.approx(np.var([1, 2, 3, 30], ddof=1))
    assert stats.mean_fake == pytest.approx(-27.5 / 3)
    assert stats.var_fake == pytest.approx(np.var([-1, -1.5, -25], ddof=1))
    # outside values land in the end bins
    assert stats.hist_real.tolist() == [0, 0, 0, 0, 0, 1, 1, 2]
    assert stats.hist_fake.tolist() == [1, 0, 1, 1, 0, 0, 0, 0]
    assert stats.hist_real.sum() == 4 and stats.hist_fake.sum() == 3


def test_output_statistics_with_a_number_of_bins_spans_both_sets():
    d = nn.Sequential(nn.Flatten(0))
    real, fake = torch.tensor([[1.0], [3.0], [5.0]]), torch.tensor([[-3.0], [-1.0]])
    stats = output_statistics(d, real, fake, 4)  # edges -3, -1, 1, 3, 5
    assert stats.edges.tolist() == [-3.0, -1.0, 1.0, 3.0, 5.0]
    assert stats.hist_real.tolist() == [0, 0, 1, 2] and stats.hist_fake.tolist() == [1, 1, 0, 0]
    constant = output_statistics(d, torch.ones(2, 1), torch.ones(2, 1), 2)
    assert constant.edges.tolist() == [0.5, 1.0, 1.5]
    with pytest.raises(ValueError, match="edges: got 0 bins"):
        output_statistics(d, real, fake, 0)


def test_output_statistics_rejects_unsorted_edges():
    with pytest.raises(ValueError, match="edges"):
        output_statistics(nn.Flatten(0), torch.zeros(3, 1), torch.zeros(3, 1), [0.0, 2.0, 1.0])


def test_fake_gradient_norm_of_a_linear_discriminator():
    d = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[3.0, 4.0]]))
    fake = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5]])
    assert fake_gradient_norm(d, fake) == pytest.approx(5.0)
    # l_i = softplus(D(x_i)), the minimax generator's term: |grad| = sigmoid(D(x_i)) * ||w||
    norm = fake_gradient_norm(d, fake, loss=lambda out: F.softplus(out).mean())
    expected = np.mean([5 * (1 / (1 + math.exp(-s))) for s in (0.0, 7.0, -1.0)])
    assert norm == pytest.approx(expected, rel=1e-6)


def test_output_drift_against_a_hand_computation():
    now = nn.Linear(2, 1)
    then = copy.deepcopy(now)
    with torch.no_grad():
        now.weight.add_(torch.tensor([[1.0, 0.0]]))
        now.bias.add_(2.0)
    real = torch.tensor([[1.0, 5.0], [-1.0, 0.0]])  # output differences: 1 + 2 = 3 and -1 + 2 = 1
    fake = torch.tensor([[0.0, 0.0]])  # difference 2
    drift = output_drift(now, then, real, fake)
    assert drift.real == pytest.approx(math.sqrt(9 + 1))
    assert drift.fake == pytest.approx(2.0)
    assert drift.weights == pytest.approx(math.sqrt(1 + 4))


def test_output_drift_rejects_another_architecture():
    with pytest.raises(ValueError, match="checkpoint"):
        output_drift(nn.Linear(2, 1), nn.Linear(3, 1), torch.zeros(1, 2), torch.zeros(1, 2))
