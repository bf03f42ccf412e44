"""Discriminator penalties.

The loss penalties (gradient penalty, R1, R2, L2 weight penalty) are terms of L_adv, so that
methods that differentiate L_adv (AdvAs, CGD) see them as the papers do. Each is a plain function
of a batch and a ``Penalty`` object: the weighted term with its batch form (the trainer's L_adv)
and its per-sample form (the AdvAs unbiased estimator, written for ``torch.func``). Weight clipping
is a projection after the adversary's step and spectral normalisation a reparametrisation of its
layers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from equilibria.core.parallel import SINGLE, DataParallel

# D's score of one sample (no batch dimension) at parameters ``params``: (params, x) -> scalar.
Score = Callable[[dict[str, Tensor], Tensor], Tensor]


def _input_gradient(discriminator: nn.Module, x: Tensor) -> Tensor:
    """grad_x sum_i D(x_i), kept in the graph so the penalty can be differentiated."""
    if not x.requires_grad:
        x = x.requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(x).sum(), x, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor, center: float = 1.0,
                     parallel: DataParallel = SINGLE) -> Tensor:
    """E (||grad D(x_hat)||_2 - center)^2 on x_hat = e x + (1 - e) G(z), e ~ U[0, 1] per sample.

    The WGAN-GP term (Gulrajani et al. 2017, Eq. 3) without its weight; ``fake`` keeps its graph
    so the penalty depends on the generator's parameters too. Under data parallelism the weights e
    are drawn for the global batch (``parallel``), this process's share kept.
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient penalty: real batch of shape {tuple(real.shape)}, generated {tuple(fake.shape)}; "
                         "allowed: equal shapes (it interpolates pairs of a real and a generated sample)")
    e = parallel.draw(torch.rand, real.shape[0], *(1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = torch.lerp(fake, real.detach(), e)
    if not x_hat.requires_grad:
        x_hat.requires_grad_(True)
    return (_input_gradient(discriminator, x_hat).norm(dim=1) - center).pow(2).mean()


def r1_penalty(discriminator: nn.Module, real: Tensor) -> Tensor:
    """1/2 E ||grad_x D(x)||^2 on real data (Mescheder et al. 2018, Eq. 9) without its weight gamma."""
    grad = _input_gradient(discriminator, real.detach().clone())
    return 0.5 * grad.pow(2).sum(dim=1).mean()


def r2_penalty(discriminator: nn.Module, fake: Tensor) -> Tensor:
    """1/2 E ||grad_x D(x)||^2 on generated data (Roth et al. 2017; R3GAN) without its weight gamma.

    ``fake`` keeps its graph if it has one, so that the penalty depends on the generator's parameters.
    """
    x = fake if fake.requires_grad else fake.detach().requires_grad_(True)
    return 0.5 * _input_gradient(discriminator, x).pow(2).sum(dim=1).mean()


def l2_penalty(module: nn.Module) -> Tensor:
    """sum ||phi||^2 over the module's parameters (the ICR paper's L2 weight penalty)."""
    return torch.stack([p.pow(2).sum() for p in module.parameters()]).sum()


@torch.no_grad()
def clip_weights(module: nn.Module, clip: float) -> None:
    """Clamp every parameter to [-clip, clip] (WGAN, Arjovsky et al. 2017)."""
    torch._foreach_clamp_min_(list(module.parameters()), -clip)
    torch._foreach_clamp_max_(list(module.parameters()), clip)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise every Linear and Conv layer of ``module`` (Miyato et al. 2018), in place."""
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            setattr(module, name, spectral_norm(child))
        else:
            apply_spectral_norm(child)
    return module


class Penalty:
    """A weighted term of L_adv: ``penalty(D, real, fake)`` on a batch, ``penalty.per_sample(score,
    params, fake_n, real_n, u_n)`` on one pair of a generated and a real sample (u_n: the pair's
    uniform draw, the gradient penalty's interpolation weight). L_adv's term is the batch mean of
    the per-sample terms."""

    name = "penalty"

    def __init__(self, weight: float):
        if not weight >= 0:
            raise ValueError(f"{self.name} weight: got {weight!r}; allowed: a number >= 0")
        self.weight = weight

    def __call__(self, discriminator: nn.Module, real: Tensor, fake: Tensor, parallel: DataParallel = SINGLE
                 ) -> Tensor:
        return self.weight * self.batch(discriminator, real, fake, parallel)

    def per_sample(self, score: Score, params: dict[str, Tensor], fake: Tensor, real: Tensor, u: Tensor) -> Tensor:
        return self.weight * self.sample(score, params, fake, real, u)

    def batch(self, discriminator: nn.Module, real: Tensor, fake: Tensor, parallel: DataParallel = SINGLE) -> Tensor:
        """The unweighted batch term; ``parallel`` makes its random draws those of the global batch."""
        raise NotImplementedError

    def sample(self, score: Score, params: dict[str, Tensor], fake: Tensor, real: Tensor, u: Tensor) -> Tensor:
        raise NotImplementedError


def _slope(score: Score, params: dict[str, Tensor], x: Tensor) -> Tensor:
    return torch.func.grad(score, argnums=1)(params, x)


class GradientPenalty(Penalty):
    """WGAN-GP's (||grad D(x_hat)|| - center)^2 (``center`` 0: zero-centred)."""

    name = "gradient_penalty"

    def __init__(self, weight: float, center: float = 1.0):
        super().__init__(weight)
        self.center = center

    def batch(self, discriminator, real, fake, parallel=SINGLE):
        return gradient_penalty(discriminator, real, fake, self.center, parallel)

    def sample(self, score, params, fake, real, u):
        return (torch.linalg.vector_norm(_slope(score, params, torch.lerp(fake, real, u))) - self.center) ** 2


class R1(Penalty):
    """1/2 ||grad D(x)||^2 on real data."""

    name = "r1"

    def batch(self, discriminator, real, fake, parallel=SINGLE):
        return r1_penalty(discriminator, real)

    def sample(self, score, params, fake, real, u):
        return 0.5 * _slope(score, params, real).pow(2).sum()


class R2(Penalty):
    """1/2 ||grad D(x)||^2 on generated data."""

    name = "r2"

    def batch(self, discriminator, real, fake, parallel=SINGLE):
        return r2_penalty(discriminator, fake)

    def sample(self, score, params, fake, real, u):
        return 0.5 * _slope(score, params, fake).pow(2).sum()


class L2(Penalty):
    """sum ||phi||^2 over the discriminator's parameters."""

    name = "l2"

    def batch(self, discriminator, real, fake, parallel=SINGLE):
        return l2_penalty(discriminator)

    def sample(self, score, params, fake, real, u):
        return sum(p.pow(2).sum() for p in params.values())
