"""Discriminator penalties.

The loss penalties (gradient penalty, R1, L2 weight penalty) are terms of L_adv, so that methods
that differentiate L_adv (AdvAs, CGD) see them as the papers do. Weight clipping is a projection
after the adversary's step and spectral normalisation a reparametrisation of its layers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


def _input_gradient(discriminator: nn.Module, x: Tensor) -> Tensor:
    """grad_x sum_i D(x_i), kept in the graph so the penalty can be differentiated."""
    if not x.requires_grad:
        x = x.requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(x).sum(), x, create_graph=True)
    return grad.flatten(1)


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor, center: float = 1.0) -> Tensor:
    """E (||grad D(x_hat)||_2 - center)^2 on x_hat = e x + (1 - e) G(z), e ~ U[0, 1] per sample.

    The WGAN-GP term (Gulrajani et al. 2017, Eq. 3) without its weight; ``fake`` keeps its graph
    so the penalty depends on the generator's parameters too.
    """
    e = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = torch.lerp(fake, real.detach(), e)
    if not x_hat.requires_grad:
        x_hat.requires_grad_(True)
    return (_input_gradient(discriminator, x_hat).norm(dim=1) - center).pow(2).mean()


def r1_penalty(discriminator: nn.Module, real: Tensor) -> Tensor:
    """1/2 E ||grad_x D(x)||^2 on real data (Mescheder et al. 2018, Eq. 9) without its weight gamma."""
    grad = _input_gradient(discriminator, real.detach().clone())
    return 0.5 * grad.pow(2).sum(dim=1).mean()


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
