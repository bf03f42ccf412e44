"""Objectives against values computed by hand with the math module."""

import math

import pytest
import torch

from equilibria.core.objectives import OBJECTIVES, get_objective, untruncated

D_REAL = [0.0, 2.0, -0.5]
D_FAKE = [-1.0, 1.0, 3.0]


def log_sigmoid(t):
    return math.log(1.0 / (1.0 + math.exp(-t)))


def mean(values):
    values = list(values)
    return sum(values) / len(values)


def scores():
    return torch.tensor(D_REAL, dtype=torch.float64), torch.tensor(D_FAKE, dtype=torch.float64)


def log_value():
    # h = E log sigma(D(x)) + E log(1 - sigma(D(G(z)))), and 1 - sigma(t) = sigma(-t)
    return mean(log_sigmoid(t) for t in D_REAL) + mean(log_sigmoid(-t) for t in D_FAKE)


EXPECTED = {
    # name: (value, adversary loss, generator loss)
    "minimax": (log_value(), -log_value(), mean(log_sigmoid(-t) for t in D_FAKE)),
    "nonsaturating": (log_value(), -log_value(), -mean(log_sigmoid(t) for t in D_FAKE)),
    "wgan": (mean(D_REAL) - mean(D_FAKE), mean(D_FAKE) - mean(D_REAL), -mean(D_FAKE)),
    "lsgan": (
        -(0.5 * mean((t - 1) ** 2 for t in D_REAL) + 0.5 * mean(t ** 2 for t in D_FAKE)),
        0.5 * mean((t - 1) ** 2 for t in D_REAL) + 0.5 * mean(t ** 2 for t in D_FAKE),
        0.5 * mean((t - 1) ** 2 for t in D_FAKE),
    ),
    "hinge": (
        -(mean(1 - t for t in D_REAL) + mean(1 + t for t in D_FAKE)),
        mean(max(0.0, 1 - t) for t in D_REAL) + mean(max(0.0, 1 + t) for t in D_FAKE),
        -mean(D_FAKE),
    ),
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objective_values_match_hand_computation(name):
    objective = get_objective(name)
    d_real, d_fake = scores()
    value, adversary, generator = EXPECTED[name]
    assert objective.value(d_real, d_fake).item() == pytest.approx(value, rel=1e-12)
    assert objective.adversary_loss(d_real, d_fake).item() == pytest.approx(adversary, rel=1e-12)
    assert objective.generator_loss(d_real, d_fake).item() == pytest.approx(generator, rel=1e-12)


def test_hinge_truncation_only_in_the_adversary_loss():
    d_real, d_fake = scores()
    hinge = get_objective("hinge")
    # D_REAL[1] = 2 > 1 and D_FAKE[0] = -1 <= -1 are truncated, so the two losses differ
    truncated = hinge.adversary_loss(d_real, d_fake).item()
    plain = untruncated(hinge).adversary_loss(d_real, d_fake).item()
    assert plain == pytest.approx(mean(1 - t for t in D_REAL) + mean(1 + t for t in D_FAKE))
    assert truncated > plain
    assert untruncated(hinge).generator_loss(d_real, d_fake).item() == hinge.generator_loss(d_real, d_fake).item()


@pytest.mark.parametrize("name", ["minimax", "nonsaturating"])
def test_log_objectives_stable_for_large_logits(name):
    objective = get_objective(name)
    d = torch.tensor([-200.0, 200.0], requires_grad=True)
    losses = [objective.adversary_loss(d, d), objective.generator_loss(d, d), objective.value(d, d)]
    for loss in losses:
        assert torch.isfinite(loss)
        (grad,) = torch.autograd.grad(loss, d)
        assert torch.isfinite(grad).all()
    # -log sigmoid(-200) = 200 to float precision: no overflow to inf
    assert objective.adversary_loss(d, d).item() == pytest.approx(200.0, rel=1e-6)


def test_unknown_objective_names_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown objective 'vanilla'; allowed: minimax, nonsaturating, wgan, lsgan, hinge"):
        get_objective("vanilla")
