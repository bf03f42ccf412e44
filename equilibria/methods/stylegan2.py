"""StyleGAN2's training regularisers (Karras et al. 2020, Section 3 and Appendix B), for the
``stylegan2`` architecture (``equilibria.models.stylegan2``): lazy R1 and path-length regularisation.

Lazy R1: every ``r1_interval``-th iteration L_adv gains gamma/2 E ||grad_x D(x)||^2 on the real batch,
times the interval (so that its average weight is gamma/2). Path length (Eq. 4): every
``pl_interval``-th iteration, on ``batch / pl_batch_shrink`` new codes (style-mixed as in training),

    y ~ N(0, I) / sqrt(H W),   l = sqrt(mean over the layers of ||J_w^T y||^2),
    a <- a + decay (mean l - a),   penalty = pl_weight * interval * mean (l - a)^2,

whose gradient is added to the generator's (the gradient flows through a's update too, as in the
official code). The official code takes these steps as separate optimizer steps with Adam's betas
adjusted for the interval; here they join the iteration's own step, as lucidrains' stylegan2-pytorch
(which the AdvAs paper trained) does. Style mixing is the generator's (``stylegan2.style_mixing``
sets its probability); the EMA of the generator is ``train.ema``.

In any loop, with ``G`` a StyleGAN2 generator (``mapping_ws`` then ``synthesis``)::

    penalty, pl_mean = path_length_penalty(G, z, pl_mean)          # every 4 steps
    (2.0 * 4 * penalty.mean()).backward()                           # into G's gradient
    d_loss = ... + (10.0 * 16) * r1_penalty(D, real)                 # every 16 steps (r1_penalty has the 1/2)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from equilibria.core.components import Component, GeneratorStep
from equilibria.core.method import BuildContext, Contribution, Method
from equilibria.core.objectives import Objective
from equilibria.core.penalties import r1_penalty
from equilibria.core.sections import ConfigError, Float, Int, MethodConfig, option
from equilibria.randomness import draw_batch


def path_length_penalty(generator: nn.Module, z: Tensor, pl_mean: Tensor | float, decay: float = 0.01
                        ) -> tuple[Tensor, Tensor]:
    """Per sample (l - a)^2 with l the Jacobian-vector length of Eq. 4 and a the running mean moved by
    ``decay`` towards this batch's mean length; returns it (differentiable) and the new a (detached).
    The projection y is drawn by the generator's ``draw_batch`` where it has one (as its noise is), else
    from the random stream for this batch alone."""
    ws = generator.mapping_ws(z)
    images = generator.synthesis(ws)
    draw = getattr(generator, "draw_batch", draw_batch)
    noise = draw(torch.randn, len(images), *images.shape[1:], device=images.device, dtype=images.dtype)
    noise = noise / math.sqrt(images.shape[2] * images.shape[3])
    (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    lengths = grads.square().sum(dim=2).mean(dim=1).sqrt()
    mean = torch.as_tensor(pl_mean, dtype=lengths.dtype, device=lengths.device)
    mean = mean + decay * (lengths.mean() - mean)
    return (lengths - mean).square(), mean.detach()


class StyleGAN2Regularisers(Component):
    """Lazy R1 as a term of L_adv, and the lazy path-length penalty's gradient added to the generator's."""

    name = "stylegan2"

    def __init__(self, *, r1_gamma: float, r1_interval: int, pl_weight: float, pl_interval: int, pl_decay: float,
                 pl_batch_shrink: int):
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.pl_weight, self.pl_interval, self.pl_decay, self.pl_batch_shrink = (pl_weight, pl_interval, pl_decay,
                                                                                 pl_batch_shrink)
        self.pl_mean = 0.0

    def adversary_terms(self, trainer, real, fake, d_real, d_fake) -> dict[str, Tensor]:
        if self.r1_gamma == 0 or trainer.step % self.r1_interval:
            return {}
        return {"r1_lazy": self.r1_gamma * self.r1_interval * r1_penalty(trainer.discriminator, real)}

    def adjust_generator_gradient(self, trainer, step: GeneratorStep) -> dict[str, Any]:
        if self.pl_weight == 0 or trainer.step % self.pl_interval:
            return {}
        z = trainer.noise(max(1, len(step.z) // self.pl_batch_shrink))
        penalty, mean = path_length_penalty(trainer.generator, z, self.pl_mean, self.pl_decay)
        params = [p for p in trainer.generator.parameters() if p.requires_grad]
        grads = torch.autograd.grad(self.pl_weight * self.pl_interval * penalty.mean(), params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        if step.gradient_is_global:  # a component before this one averaged the gradient: average this part too
            trainer.parallel.average(grads)
        for p, g in zip(params, grads):
            p.grad = g if p.grad is None else p.grad + g
        trainer.parallel.average([mean])
        self.pl_mean = float(mean)
        return {"stylegan2/pl_mean": self.pl_mean, "stylegan2/pl_penalty": penalty.mean().detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"pl_mean": self.pl_mean}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pl_mean = float(state["pl_mean"])


class Stylegan2Config(MethodConfig):
    """``stylegan2``: StyleGAN2's lazy R1 and path-length regularisation and its style mixing, for
    ``generator.arch: stylegan2`` (the paper's values by default)."""

    r1_gamma: Float = option(10.0, "gamma of R1 on real data (the paper's FFHQ 1024: 10; StyleGAN2-ADA's rule "
                             "0.0002 R^2 / batch for smaller images)", ge=0.0)
    r1_interval: Int = option(16, "lazy R1: every this many iterations, weighted by it", ge=1)
    pl_weight: Float = option(2.0, "weight of the path-length penalty", ge=0.0)
    pl_interval: Int = option(4, "lazy path length: every this many iterations, weighted by it", ge=1)
    pl_decay: Float = option(0.01, "decay of the running mean path length", gt=0.0, le=1.0)
    pl_batch_shrink: Int = option(2, "the path-length batch is the training batch divided by this", ge=1)
    style_mixing: Float = option(0.9, "probability of mixing two codes' styles in a training batch", ge=0.0, le=1.0)
    mbstd_group: Int = option(4, "the discriminator's minibatch standard deviation: samples per group, within "
                              "each process's share of the batch (1: off)", ge=1)


def _check_config(section: Stylegan2Config, config: Any, objective: Objective) -> None:
    if section.enabled and config.generator.arch != "stylegan2":
        raise ConfigError(f"config key 'stylegan2.enabled': got true with generator.arch={config.generator.arch}; "
                          "allowed: generator.arch=stylegan2 (its regularisers need the mapping network's ws)")


def _build(section: Stylegan2Config, context: BuildContext) -> Contribution:
    context.generator.style_mixing = section.style_mixing
    context.discriminator.mbstd_group = section.mbstd_group
    return Contribution(components=[StyleGAN2Regularisers(
        r1_gamma=section.r1_gamma, r1_interval=section.r1_interval, pl_weight=section.pl_weight,
        pl_interval=section.pl_interval, pl_decay=section.pl_decay, pl_batch_shrink=section.pl_batch_shrink)])


METHOD = Method("stylegan2", Stylegan2Config, _build, check=_check_config)
