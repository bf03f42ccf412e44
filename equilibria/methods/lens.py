"""The lens of tempered adversarial networks (Sajjadi et al. 2018).

A network L between the real data and the discriminator: the discriminator sees L(x) in place of
x. The lens minimises lambda L_A + L_R (Section 2), with L_R = ||x - L(x)||^2 and L_A the
adversarial term of the objective (Appendix A.1), and lambda annealed from 1 to 0 (Appendix A.3),
so that L turns into the identity and training becomes the plain GAN.

In any loop::

    lens, lens_opt = Lens(channels=1), torch.optim.Adam(lens.parameters(), lr=1e-4)
    real_seen = lens(real).detach()                 # what D trains on instead of real
    ...                                             # the usual D and G steps
    loss = lens_loss(lens, D, real, "nonsaturating", lens_lambda(step, 100_000))
    lens_opt.zero_grad(); loss.total.backward(inputs=list(lens.parameters())); lens_opt.step()
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from equilibria.training.components import Component


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
        for name, value in (("lens.width", width), ("lens.blocks", blocks), ("lens channels", channels)):
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
        raise ValueError(f"lens.anneal_steps: got {anneal_steps}; allowed: an integer >= 1")
    return 1.0 - math.sin(step * math.pi / (2 * anneal_steps)) if step <= anneal_steps else 0.0


def lens_adversarial_loss(d_lensed: Tensor, objective: str) -> Tensor:
    """L_A: the lens works against the discriminator (Section 2 and Appendix A.1).

    minimax / nonsaturating: -log(1 - D(L(x))) = softplus(logit); lsgan: D(L(x))^2;
    wgan and hinge (unbounded critics): D(L(x)). Means over the batch.
    """
    if objective in ("minimax", "nonsaturating"):
        return F.softplus(d_lensed).mean()
    if objective == "lsgan":
        return d_lensed.pow(2).mean()
    if objective in ("wgan", "hinge"):
        return d_lensed.mean()
    raise ValueError(f"objective: got {objective!r} with the lens; allowed: minimax, nonsaturating, lsgan, wgan, hinge")


@dataclass
class LensLoss:
    total: Tensor
    adversarial: Tensor
    reconstruction: Tensor


RECONSTRUCTIONS = ("sum", "mean")


def lens_loss(lens: nn.Module, discriminator: nn.Module, real: Tensor, objective: str, lam: float,
              reconstruction: str = "sum") -> LensLoss:
    """lambda L_A + L_R with L_R = ||x - L(x)||^2 (Section 2): per sample, the squared norm ("sum",
    the paper's formula) or the mean squared error over its pixels ("mean"); averaged over the batch."""
    if reconstruction not in RECONSTRUCTIONS:
        raise ValueError(f"lens.reconstruction: got {reconstruction!r}; allowed: sum, mean")
    lensed = lens(real)
    squared = (real - lensed).flatten(1).pow(2)
    reconstruction = (squared.sum(1) if reconstruction == "sum" else squared.mean(1)).mean()
    adversarial = lens_adversarial_loss(discriminator(lensed), objective)
    return LensLoss(lam * adversarial + reconstruction, adversarial, reconstruction)


class LensComponent(Component):
    """The lens in the trainer: transforms each real batch and updates itself once per iteration.

    The adversary and the generator see L(x) computed without gradient, so the lens receives only
    its own loss. With ``switch_off``, once lambda is 0 and the reconstruction error per pixel is
    below ``switch_off_tol``, the lens is the identity to that tolerance and is no longer run.
    """

    name = "lens"

    def __init__(self, lens: Lens, optimizer: torch.optim.Optimizer, objective: str, *, lam: float | None = None,
                 anneal_steps: int = 100_000, switch_off: bool = False, switch_off_tol: float = 1e-6,
                 reconstruction: str = "sum", num_images: int = 32):
        """``num_images`` real images (at most 32) and their lensed versions form the lens's sample grid."""
        lens_adversarial_loss(torch.zeros(1), objective)  # refuse an unsupported objective now
        self.lens, self.optimizer, self.objective = lens, optimizer, objective
        self.lam, self.anneal_steps = lam, anneal_steps
        self.switch_off, self.switch_off_tol = switch_off, switch_off_tol
        self.reconstruction = reconstruction
        self.num_images = min(num_images, 32)
        self.off = False
        self._last_real: Tensor | None = None

    def current_lambda(self, step: int) -> float:
        return self.lam if self.lam is not None else lens_lambda(step, self.anneal_steps)

    def transform_real(self, real: Tensor) -> Tensor:
        if self.off:
            return real
        with torch.no_grad():
            return self.lens(real)

    def after_iteration(self, trainer, real: Tensor) -> dict:
        self._last_real = real[: self.num_images]
        lam = self.current_lambda(trainer.step + 1)
        if self.off:
            return {"lens/lambda": lam, "lens/on": 0.0}
        loss = lens_loss(self.lens, trainer.discriminator, real, self.objective, lam, self.reconstruction)
        self.optimizer.zero_grad(set_to_none=True)
        loss.total.backward(inputs=list(self.lens.parameters()))
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
