"""GAN objectives from the discriminator's raw outputs (logits or critic values).

Each objective gives three scalars from ``d_real = a_phi(x)`` and ``d_fake = a_phi(G(z))``
(the generator's loss from ``d_fake`` alone):

- ``value``: h(p_theta, a_phi), the quantity the adversary maximises and, in the zero-sum
  view, the generator minimises (AdvAs Eq. 1-2). Joint optimizers (CGD/ACGD) use it.
- ``adversary_loss``: L_adv, what the adversary minimises (``-value`` except for the hinge's
  truncation and the least-squares game, which is not zero-sum).
- ``generator_loss``: L_gen, what the generator minimises.

Probabilities are never formed: log sigma(t) = -softplus(-t) and log(1 - sigma(t)) = -softplus(t).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn.functional as F
from torch import Tensor

Scores = Callable[[Tensor, Tensor], Tensor]
FakeScores = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Objective:
    """The value, adversary loss (of d_real, d_fake) and generator loss (of d_fake) of an objective."""

    name: str
    value: Scores
    adversary_loss: Scores
    generator_loss: FakeScores


def _log_value(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # h = E log D(x) + E log(1 - D(G(z))) with D = sigmoid(logits)  (Goodfellow et al. 2014)
    return -F.softplus(-d_real).mean() - F.softplus(d_fake).mean()


def _wasserstein_value(d_real: Tensor, d_fake: Tensor) -> Tensor:
    return d_real.mean() - d_fake.mean()


def _negate(value: Scores) -> Scores:
    return lambda d_real, d_fake: -value(d_real, d_fake)


def _lsgan_adversary(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # Mao et al. 2017, Eq. 2 with a=0, b=1: 1/2 E (D(x) - 1)^2 + 1/2 E D(G(z))^2
    return 0.5 * ((d_real - 1).pow(2).mean() + d_fake.pow(2).mean())


def _hinge_adversary(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # Lim & Ye 2017: E relu(1 - D(x)) + E relu(1 + D(G(z)))
    return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()


def _hinge_untruncated_adversary(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # The hinge loss without its truncation (AdvAs Section 5): E (1 - D(x)) + E (1 + D(G(z)))
    return (1 - d_real).mean() + (1 + d_fake).mean()


OBJECTIVES: dict[str, Objective] = {
    "minimax": Objective(
        "minimax",
        value=_log_value,
        adversary_loss=_negate(_log_value),
        generator_loss=lambda d_fake: -F.softplus(d_fake).mean(),
    ),
    "nonsaturating": Objective(
        "nonsaturating",
        value=_log_value,
        adversary_loss=_negate(_log_value),
        generator_loss=lambda d_fake: F.softplus(-d_fake).mean(),
    ),
    "wgan": Objective(
        "wgan",
        value=_wasserstein_value,
        adversary_loss=_negate(_wasserstein_value),
        generator_loss=lambda d_fake: -d_fake.mean(),
    ),
    "lsgan": Objective(
        "lsgan",
        value=_negate(_lsgan_adversary),
        adversary_loss=_lsgan_adversary,
        generator_loss=lambda d_fake: 0.5 * (d_fake - 1).pow(2).mean(),
    ),
    "hinge": Objective(
        "hinge",
        value=_negate(_hinge_untruncated_adversary),
        adversary_loss=_hinge_adversary,
        generator_loss=lambda d_fake: -d_fake.mean(),
    ),
}


def get_objective(name: str) -> Objective:
    """The objective called ``name``."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective: unknown objective {name!r}; allowed: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def untruncated(objective: Objective) -> Objective:
    """The hinge without its truncation (adversary loss ``-value``); every other objective as it is."""
    if objective.name != "hinge":
        return objective
    return Objective(objective.name, objective.value, _negate(objective.value), objective.generator_loss)


def vral_objective(mu_real: float, mu_fake: float, least_squares: bool = False) -> Objective:
    """VRAL's objective ("vral", "vral_lsq"): the adversary's loss is the meta-discriminators' terms
    alone (Eq. 10), so its objective part is 0; the generator minimises Eq. 11 or Eq. 12.

    Eq. 11: s (E_Q D - E_P D) with s = sign(mu_f - mu_r): as printed when mu_f > mu_r, and otherwise
    the sign that moves the generator's outputs towards mu_r; E_P D has no generator gradient and is
    left out of the loss. Eq. 12 (``least_squares``): E_Q (D - mu_r)^2.
    """
    if mu_real == mu_fake:
        raise ValueError(f"meta.mu_real and meta.mu_fake: both {mu_real}; allowed: two different means")
    sign = 1.0 if mu_fake > mu_real else -1.0
    return Objective(
        "vral_lsq" if least_squares else "vral",
        value=lambda d_real, d_fake: -sign * (d_real.mean() - d_fake.mean()),
        adversary_loss=lambda d_real, d_fake: d_real.new_zeros(()),
        generator_loss=(lambda d_fake: (d_fake - mu_real).pow(2).mean()) if least_squares
        else (lambda d_fake: sign * d_fake.mean()),
    )
