"""R3GAN (Huang, Gokaslan, Kuleshov, Tompkin, "The GAN is dead; long live the GAN! A modern GAN
baseline", NeurIPS 2024): the relativistic pairing loss (RpGAN) with the zero-centred gradient
penalties R1 and R2.

With f = softplus, x_n real and G(z_n) generated, paired elementwise in the batch:

    L_adv = E_n f(D(G(z_n)) - D(x_n)) + gamma/2 E_x ||grad_x D(x)||^2 + gamma/2 E_z ||grad_x D(G(z))||^2
    L_gen = E_n f(D(x_n) - D(G(z_n)))

R1 is the penalty on real data (Mescheder et al. 2018), R2 the one on generated data. Each enters
L_adv with weight gamma/2 (``R1(gamma)`` and ``R2(gamma)`` of ``equilibria.core.penalties``, whose
terms already carry the 1/2), so ``gamma`` is the paper's gamma. The paper's networks and its
schedules (gamma and learning rate decayed over training) are not part of this module.

In any loop (``G``, ``D`` modules, ``real`` a batch, ``z`` as many latent codes)::

    objective, r1, r2 = relativistic_objective(), R1(gamma), R2(gamma)
    fake = G(z).detach()
    d_loss = objective.adversary_loss(D(real), D(fake)) + r1(D, real, fake) + r2(D, real, fake)  # D's step
    g_loss = objective.generator_loss(D(real).detach(), D(G(z)))                               # G's step
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from equilibria.core.method import BuildContext, Contribution, Method
from equilibria.core.objectives import Objective
from equilibria.core.penalties import R1, R2
from equilibria.core.sections import ConfigError, Float, MethodConfig, option


def _paired(d_real: Tensor, d_fake: Tensor) -> None:
    if d_real.shape != d_fake.shape:
        raise ValueError(f"relativistic objective: d_real has shape {tuple(d_real.shape)} and d_fake "
                         f"{tuple(d_fake.shape)}; allowed: equal shapes (it pairs real and generated samples "
                         "elementwise, so both batches need the same size)")


def _adversary_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # E_n softplus(D(G(z_n)) - D(x_n)) = -E_n log sigma(D(x_n) - D(G(z_n)))
    _paired(d_real, d_fake)
    return F.softplus(d_fake - d_real).mean()


def _generator_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    # E_n softplus(D(x_n) - D(G(z_n))) = -E_n log sigma(D(G(z_n)) - D(x_n))
    _paired(d_real, d_fake)
    return F.softplus(d_real - d_fake).mean()


def _value(d_real: Tensor, d_fake: Tensor) -> Tensor:
    return -_adversary_loss(d_real, d_fake)


def relativistic_objective() -> Objective:
    """The relativistic pairing loss (RpGAN with f = softplus), named "relativistic".

    The adversary minimises E_n softplus(D(fake_n) - D(real_n)), the generator E_n softplus(D(real_n)
    - D(fake_n)) (the non-saturating form the paper trains with). ``value`` is -L_adv: the zero-sum,
    saturating RpGAN game, which is what a joint optimizer (CGD, ACGD) plays, the generator
    minimising it. There is no ``fake_loss``: the objective scores real and generated outputs only
    in pairs, which also need batches of the same size (a ValueError names both shapes otherwise).
    """
    return Objective("relativistic", adversary_loss=_adversary_loss, generator_loss=_generator_loss, value=_value,
                     fake_loss=None, generator_uses_real=True)


class R3ganConfig(MethodConfig):
    """``r3gan``: the relativistic pairing loss with R1 and R2; sets ``objective: relativistic``."""

    gamma: Float = option(0.05, "weight gamma of R1 and R2: each enters L_adv as gamma/2 E||grad_x D||^2 "
                          "(R3GAN's CIFAR-10: 0.05)", ge=0.0)


def _check_config(section: R3ganConfig, config: Any, objective: Objective) -> None:
    if section.enabled:
        for key in ("r1", "r2"):
            value = getattr(config.penalties, key)
            if value > 0:
                raise ConfigError(f"config key 'penalties.{key}': got {value!r} with r3gan.enabled=true; allowed: 0 "
                                  "(r3gan adds R1 and R2 with weight r3gan.gamma)")
    elif config.objective == "relativistic":
        raise ConfigError("config key 'objective': got 'relativistic' without r3gan; allowed with "
                          "r3gan.enabled=true (which sets it, and adds R1 and R2 with weight r3gan.gamma)")


def _build(section: R3ganConfig, context: BuildContext) -> Contribution:
    return Contribution(penalties=[R1(section.gamma), R2(section.gamma)])


METHOD = Method("r3gan", R3ganConfig, _build, check=_check_config, implies={"objective": "relativistic"},
                objectives={"relativistic": lambda section: relativistic_objective()})
