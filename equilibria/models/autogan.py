"""AutoGAN's best CIFAR-10 networks (Gong et al. 2019, "AutoGAN: neural architecture search for
generative adversarial networks", the searched architecture "autogan_cifar10_a"), as its official code
builds them. AdvAs Section 5.2 trains them.

Generator (width w = 256, latent 128): Linear to w x 4 x 4, then three cells, each doubling the
resolution (4 -> 8 -> 16 -> 32):

    cell(x, earlier) = c2(ReLU(h)) [+ c_sc(up(x))],   h = c1(up(ReLU(x))) + sum_k s_k(up_to(earlier_k))

with 3 x 3 convolutions c1, c2, the 1 x 1 inner shortcut c_sc and 1 x 1 cross-scale skips s_k from the
earlier cells' h, upsampled to the cell's size. Cell 1: nearest upsampling, shortcut, no skip; cell 2:
bilinear, shortcut, a skip from cell 1; cell 3: nearest, no shortcut, skips from cells 1 and 2. The
official code adds the skips to c1's output in place, so a cell passes on h with its skips added (as
here). Then BatchNorm, ReLU, a 3 x 3 convolution to the channels and tanh. No normalisation in the cells.

Discriminator (width 128, spectral normalisation in the official configuration: set
``discriminator.spectral_norm``): an optimised first block (c1, ReLU, c2, 2 x 2 average pool; shortcut:
pool, then 1 x 1 conv), a downsampling residual block (ReLU, c1, ReLU, c2, pool; shortcut 1 x 1 conv then
pool), two residual blocks with identity shortcuts, ReLU, the sum over pixels, Linear without bias.

The official initialisation is the scheme ``autogan`` (``generator.init``, ``discriminator.init``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .common import check_positive, check_shape

LATENT_DIM = 128
WIDTH_G = 256
WIDTH_D = 128
SHAPE = (3, 32, 32)


class Cell(nn.Module):
    """One generator cell of AutoGAN's search space (see the module docstring)."""

    def __init__(self, channels: int, up_mode: str, skips_in: int, shortcut: bool):
        super().__init__()
        self.c1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.c2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.c_sc = nn.Conv2d(channels, channels, 1) if shortcut else None
        self.skips = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(skips_in))
        self.up_mode = up_mode

    def _up(self, x: Tensor, size: Sequence[int] | None = None) -> Tensor:
        if size is None:
            return F.interpolate(x, scale_factor=2, mode=self.up_mode)
        return F.interpolate(x, size=tuple(size), mode=self.up_mode)

    def forward(self, x: Tensor, earlier: Sequence[Tensor] = ()) -> tuple[Tensor, Tensor]:
        """(h with the skips added, the cell's output)."""
        h = self.c1(self._up(F.relu(x)))
        for skip, feature in zip(self.skips, earlier, strict=True):
            h = h + skip(self._up(feature, h.shape[2:]))
        out = self.c2(F.relu(h))
        if self.c_sc is not None:
            out = out + self.c_sc(self._up(x))
        return h, out


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, C, 32, 32) in (-1, 1)."""

    def __init__(self, *, latent_dim: int = LATENT_DIM, width: int = WIDTH_G, out_shape: tuple[int, ...]):
        super().__init__()
        self.latent_dim = check_positive("generator.latent_dim", latent_dim)
        self.width = check_positive("generator.width", width)
        self.out_shape = check_shape("generator", "autogan", out_shape, (None, 32, 32))
        self.output_range = (-1.0, 1.0)
        self.l1 = nn.Linear(self.latent_dim, 16 * self.width)
        self.cell1 = Cell(self.width, "nearest", skips_in=0, shortcut=True)
        self.cell2 = Cell(self.width, "bilinear", skips_in=1, shortcut=True)
        self.cell3 = Cell(self.width, "nearest", skips_in=2, shortcut=False)
        self.to_rgb = nn.Sequential(nn.BatchNorm2d(self.width), nn.ReLU(),
                                    nn.Conv2d(self.width, self.out_shape[0], 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        x = self.l1(z).view(-1, self.width, 4, 4)
        h1, x = self.cell1(x)
        h2, x = self.cell2(x, (h1,))
        _, x = self.cell3(x, (h1, h2))
        return self.to_rgb(x)


class OptimizedBlock(nn.Module):
    """The first discriminator block: c1, ReLU, c2, pool; shortcut: pool, 1 x 1 conv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.c2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.c_sc = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2) + self.c_sc(F.avg_pool2d(x, 2))


class Block(nn.Module):
    """ReLU, c1, ReLU, c2 (then pool if ``downsample``); shortcut: identity, or 1 x 1 conv (then pool)."""

    def __init__(self, channels: int, downsample: bool):
        super().__init__()
        self.c1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.c2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.c_sc = nn.Conv2d(channels, channels, 1) if downsample else None
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        h = self.c2(F.relu(self.c1(F.relu(x))))
        shortcut = x if self.c_sc is None else self.c_sc(x)
        if self.downsample:
            h, shortcut = F.avg_pool2d(h, 2), F.avg_pool2d(shortcut, 2)
        return h + shortcut


class Discriminator(nn.Module):
    """images (N, C, 32, 32) -> raw scores (N,)."""

    def __init__(self, *, width: int = WIDTH_D, in_shape: tuple[int, ...]):
        super().__init__()
        width = check_positive("discriminator.width", width)
        shape = check_shape("discriminator", "autogan", in_shape, (None, 32, 32))
        self.blocks = nn.Sequential(OptimizedBlock(shape[0], width), Block(width, downsample=True),
                                    Block(width, downsample=False), Block(width, downsample=False))
        self.l5 = nn.Linear(width, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.l5(F.relu(self.blocks(x)).sum(dim=(2, 3))).squeeze(1)


def generator(*, latent_dim: int = LATENT_DIM, width: int = WIDTH_G, out_shape: tuple[int, ...]) -> Generator:
    return Generator(latent_dim=latent_dim, width=width, out_shape=out_shape)


def discriminator(*, width: int = WIDTH_D, in_shape: tuple[int, ...]) -> Discriminator:
    return Discriminator(width=width, in_shape=in_shape)
