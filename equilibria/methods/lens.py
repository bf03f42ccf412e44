"""The lens of tempered adversarial networks (Sajjadi et al. 2018).

A network L between the real data and the discriminator: the discriminator sees L(x) in place of
x. The lens minimises lambda L_A + L_R (Section 2), with L_R = ||x - L(x)||^2 and L_A the
objective's ``fake_loss`` on D(L(x)) (the discriminator's loss for calling L(x) generated: Section 2
and Appendix A.1), and lambda annealed from 1 to 0 (Appendix A.3), so that L turns into the
identity and training becomes the plain GAN.

In any loop::

    lens, lens_opt = Lens(channels=1), torch.optim.Adam(lens.parameters(), lr=1e-4)
    lensed = lens(real)                             # one forward pass, its graph kept for the lens's step
    real_seen = lensed.detach()                     # what D trains on instead of real
    ...                                             # the usual D and G steps
    loss = lens_loss(lens, D, real, get_objective("nonsaturating"), lens_lambda(step, 100_000), lensed=lensed)
    lens_opt.zero_grad(); loss.total.backward(inputs=list(lens.parameters())); lens_opt.step()
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from equilibria.core.components import Component
from equilibria.core.method import BuildContext, Contribution, Method
from equilibria.core.objectives import Objective
from equilibria.core.optimizers import OptimizerConfig, build_optimizer
from equilibria.core.sections import Bool, ConfigError, Float, Int, MethodConfig, option
from equilibria.data import POINT_DATASETS


class ResidualBlock(nn.Module):
    """x + conv3x3(relu(conv3x3(x))), stride 1."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class Lens(nn.Module):
    """Fully convolutional: 3x3 conv in, ``blocks`` residual blocks, 3x3 conv out, plus x (Appendix A.2).

    All convolutions have 3x3 kernels and stride 1. The output convolution starts at zero, so
    the lens starts as the identity exactly and learns away from it only as its loss asks.
    """

    def __init__(self, channels: int, width: int = 32, blocks: int = 8):
        super().__init__()
        for name, value in (("width", width), ("blocks", blocks), ("channels", channels)):
            if value < 1:
                raise ValueError(f"{name}: got {value}; allowed: an integer >= 1")
        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, channels, 3, padding=1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.tail.weight)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.head.in_channels:
            raise ValueError(f"lens input: got shape {tuple(x.shape)}; allowed: (N, {self.head.in_channels}, H, W)")
        return x + self.tail(F.relu(self.blocks(F.relu(self.head(x)))))


def lens_lambda(step: int, anneal_steps: int) -> float:
    """lambda = 1 - sin(t pi / 2K) for t <= K, then 0 (Appendix A.3, Eq. 7)."""
    if anneal_steps < 1:
        raise ValueError(f"anneal_steps: got {anneal_steps}; allowed: an integer >= 1")
    return 1.0 - math.sin(step * math.pi / (2 * anneal_steps)) if step <= anneal_steps else 0.0


def _fake_loss(objective: Objective):
    if objective.fake_loss is None:
        raise ValueError(f"objective {objective.name!r} has no loss for outputs on generated data alone (it scores "
                         "real and generated outputs in pairs), which the lens's adversarial term needs")
    return objective.fake_loss


@dataclass
class LensLoss:
    total: Tensor
    adversarial: Tensor
    reconstruction: Tensor


RECONSTRUCTIONS = ("sum", "mean")


def lens_loss(lens: nn.Module, discriminator: nn.Module, real: Tensor, objective: Objective, lam: float,
              reconstruction: str = "sum", lensed: Tensor | None = None) -> LensLoss:
    """lambda L_A + L_R (Section 2): L_A = ``objective.fake_loss(D(L(x)))``; L_R = ||x - L(x)||^2 per
    sample, the squared norm ("sum", the paper's formula) or the mean squared error over its pixels
    ("mean"), averaged over the batch. ``lensed``: L(x) already computed, with its graph (default:
    ``lens(real)``)."""
    if reconstruction not in RECONSTRUCTIONS:
        raise ValueError(f"reconstruction: got {reconstruction!r}; allowed: sum, mean")
    lensed = lens(real) if lensed is None else lensed
    squared = (real - lensed).flatten(1).pow(2)
    reconstruction = (squared.sum(1) if reconstruction == "sum" else squared.mean(1)).mean()
    adversarial = _fake_loss(objective)(discriminator(lensed))
    return LensLoss(lam * adversarial + reconstruction, adversarial, reconstruction)


class LensComponent(Component):
    """The lens in the trainer: transforms each real batch and updates itself once per iteration.

    The adversary and the generator see L(x) detached, so the lens receives only its own loss; the
    forward pass of the iteration's last real batch keeps its graph for the lens's update (the lens
    has not moved in between), so each iteration runs the lens forward once. With ``switch_off``,
    once lambda is 0 and the reconstruction error per pixel is below ``switch_off_tol``, the lens is
    the identity to that tolerance and is no longer run.
    """

    name = "lens"

    def __init__(self, lens: Lens, optimizer: torch.optim.Optimizer, objective: Objective, *, lam: float | None = None,
                 anneal_steps: int = 100_000, switch_off: bool = False, switch_off_tol: float = 1e-6,
                 reconstruction: str = "sum", num_images: int = 32):
        """``num_images`` real images (at most 32) and their lensed versions form the lens's sample grid."""
        _fake_loss(objective)  # refuse an objective without a fake term now
        self.lens, self.optimizer, self.objective = lens, optimizer, objective
        self.lam, self.anneal_steps = lam, anneal_steps
        self.switch_off, self.switch_off_tol = switch_off, switch_off_tol
        self.reconstruction = reconstruction
        self.num_images = min(num_images, 32)
        self.off = False
        self._last_real: Tensor | None = None
        self._lensed: tuple[Tensor, Tensor] | None = None  # (real, L(real) with its graph), for after_iteration

    def current_lambda(self, step: int) -> float:
        return self.lam if self.lam is not None else lens_lambda(step, self.anneal_steps)

    def transform_real(self, real: Tensor) -> Tensor:
        if self.off:
            return real
        if not torch.is_grad_enabled():
            return self.lens(real)
        lensed = self.lens(real)
        self._lensed = (real, lensed)
        return lensed.detach()

    def after_iteration(self, trainer, real: Tensor) -> dict:
        self._last_real = real[: self.num_images]
        lam = self.current_lambda(trainer.step + 1)
        if self.off:
            return {"lens/lambda": lam, "lens/on": 0.0}
        cached, self._lensed = self._lensed, None
        lensed = cached[1] if cached is not None and cached[0] is real else None
        loss = lens_loss(self.lens, trainer.discriminator, real, self.objective, lam, self.reconstruction, lensed)
        self.optimizer.zero_grad(set_to_none=True)
        loss.total.backward(inputs=list(self.lens.parameters()))
        trainer.parallel.average_gradients(list(self.lens.parameters()))
        self.optimizer.step()
        per_pixel = loss.reconstruction.detach() / (real[0].numel() if self.reconstruction == "sum" else 1)
        if self.switch_off and lam == 0.0 and per_pixel.item() < self.switch_off_tol:
            self.off = True
        return {"lens/lambda": lam, "lens/loss": loss.total.detach(), "lens/adversarial": loss.adversarial.detach(),
                "lens/reconstruction": loss.reconstruction.detach(), "lens/reconstruction_per_pixel": per_pixel,
                "lens/on": 1.0}

    @torch.no_grad()
    def sample_images(self, trainer) -> dict[str, Tensor]:
        """Rows of 8 real images, each followed by the row of their lensed versions."""
        if self._last_real is None:
            return {}
        real = self._last_real[: len(self._last_real) // 8 * 8 or len(self._last_real)]
        rows = torch.stack([real, self.transform_real(real)]).unflatten(1, (-1, min(8, len(real))))
        return {"lensed": rows.transpose(0, 1).flatten(0, 2)}

    def modules(self) -> dict[str, nn.Module]:
        return {"lens": self.lens}

    def state_dict(self) -> dict:
        return {"lens": self.lens.state_dict(), "optimizer": self.optimizer.state_dict(), "off": self.off}

    def load_state_dict(self, state: dict) -> None:
        self.lens.load_state_dict(state["lens"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.off = state["off"]


# -- the method: config section ``lens`` ----------------------------------------------------------------
class LensConfig(MethodConfig):
    """``lens``: the lens of tempered adversarial networks."""

    width: Int = option(32, "channels inside the lens", ge=1)
    blocks: Int = option(8, "residual blocks (Appendix A.2: 8)", ge=1)
    lam: Float | None = option(None, "fixed lambda; null: the schedule of Appendix A.3", ge=0.0)
    anneal_steps: Int = option(100_000, "K of the schedule: lambda reaches 0 at step K (the paper's 1e5)", ge=1)
    switch_off: Bool = option(False, "stop running the lens once lambda is 0 and it is the identity")
    switch_off_tol: Float = option(1e-6, "reconstruction error per pixel under which switch_off acts", gt=0.0)
    reconstruction: Literal[RECONSTRUCTIONS] = option("sum", "L_R per sample: the squared norm (sum, the "
                                                      "paper's formula) or the per-pixel mean (mean)")
    optim: OptimizerConfig = option(OptimizerConfig(lr=1e-4), "the lens's optimizer (Appendix A.2: Adam, 1e-4)")


def _check_config(section: LensConfig, config: Any, objective: Objective) -> None:
    if not section.enabled:
        return
    if config.data.name in POINT_DATASETS:
        raise ConfigError(f"config key 'lens.enabled': got true for data.name={config.data.name}; allowed: "
                          "images only")
    if objective.fake_loss is None:
        raise ConfigError(f"config key 'lens.enabled': got true with objective={objective.name}; allowed: an "
                          "objective with a loss on generated outputs alone (minimax, nonsaturating, wgan, "
                          "lsgan, hinge)")


def _build(section: LensConfig, context: BuildContext) -> Contribution:
    lens = Lens(context.sample_shape[0], width=section.width, blocks=section.blocks).to(context.device)
    component = LensComponent(lens, build_optimizer(lens.parameters(), section.optim), context.objective,
                              lam=section.lam, anneal_steps=section.anneal_steps, switch_off=section.switch_off,
                              switch_off_tol=section.switch_off_tol, reconstruction=section.reconstruction,
                              num_images=context.num_images)
    return Contribution(components=[component])


METHOD = Method("lens", LensConfig, _build, check=_check_config)
