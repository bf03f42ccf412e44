"""GAN objectives from the discriminator's raw outputs (logits or critic values).

An objective gives, from ``d_real = a_phi(x)`` and ``d_fake = a_phi(G(z))``:

- ``adversary_loss(d_real, d_fake)``: L_adv, what the adversary minimises.
- ``generator_loss(d_real, d_fake)``: L_gen, what the generator minimises. Most objectives ignore
  ``d_real`` (the trainer passes None then); relativistic ones compare the two and set
  ``generator_uses_real``.
- ``value(d_real, d_fake)``: h(p_theta, a_phi), the quantity the adversary maximises and, in the
  zero-sum view, the generator minimises (AdvAs Eq. 1-2); joint optimizers (CGD/ACGD) play this
  game. None when the objective has no such game (VRAL's).
- ``fake_loss(d)``: the adversary's loss for outputs it should call generated, as the papers write
  it (Goodfellow: -log(1 - D); LSGAN: D^2; WGAN and the hinge: D). The lens of tempered adversarial
  networks works against the discriminator with it (Sajjadi et al., Section 2 and Appendix A.1).
  None when the objective scores real and generated outputs only in pairs.

Probabilities are never formed: log sigma(t) = -softplus(-t) and log(1 - sigma(t)) = -softplus(t).
Methods bring objectives of their own (VRAL's, R3GAN's) through their registry entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn.functional as F
from torch import Tensor

Scores = Callable[[Tensor, Tensor], Tensor]
Outputs = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Objective:
    """The adversary's and the generator's losses of a GAN objective, its value game and its fake term."""

    name: str
    adversary_loss: Scores
    generator_loss: Scores
    value: Scores | None = None
    fake_loss: Outputs | None = None
    generator_uses_real: bool = False


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


def _mean(d: Tensor) -> Tensor:
    return d.mean()


def _softplus_mean(d: Tensor) -> Tensor:
    return F.softplus(d).mean()


OBJECTIVES: dict[str, Objective] = {
    "minimax": Objective(
        "minimax",
        adversary_loss=_negate(_log_value),
        generator_loss=lambda d_real, d_fake: -F.softplus(d_fake).mean(),
        value=_log_value,
        fake_loss=_softplus_mean,
    ),
    "nonsaturating": Objective(
        "nonsaturating",
        adversary_loss=_negate(_log_value),
        generator_loss=lambda d_real, d_fake: F.softplus(-d_fake).mean(),
        value=_log_value,
        fake_loss=_softplus_mean,
    ),
    "wgan": Objective(
        "wgan",
        adversary_loss=_negate(_wasserstein_value),
        generator_loss=lambda d_real, d_fake: -d_fake.mean(),
        value=_wasserstein_value,
        fake_loss=_mean,
    ),
    "lsgan": Objective(
        "lsgan",
        adversary_loss=_lsgan_adversary,
        generator_loss=lambda d_real, d_fake: 0.5 * (d_fake - 1).pow(2).mean(),
        value=_negate(_lsgan_adversary),
        fake_loss=lambda d: d.pow(2).mean(),  # Sajjadi et al. Eq. A.3 (written without Mao's 1/2)
    ),
    "hinge": Objective(
        "hinge",
        adversary_loss=_hinge_adversary,
        generator_loss=lambda d_real, d_fake: -d_fake.mean(),
        value=_negate(_hinge_untruncated_adversary),
        fake_loss=_mean,
    ),
}


def get_objective(name: str) -> Objective:
    """The objective called ``name``."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; allowed: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def untruncated(objective: Objective) -> Objective:
    """The hinge without its truncation (adversary loss ``-value``); every other objective as it is."""
    if objective.name != "hinge":
        return objective
    return Objective(objective.name, _negate(objective.value), objective.generator_loss, objective.value,
                     objective.fake_loss)
