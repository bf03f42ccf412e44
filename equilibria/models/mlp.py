"""MLPs for 2-D toy data (the 8-Gaussian ring and the 25-Gaussian grid).

The papers give no network for these benchmarks; this is the usual choice: ``depth`` hidden
layers of ``width`` units, ReLU in the generator, LeakyReLU(0.2) in the discriminator, linear
outputs. The latent is 16-D rather than 2-D: the generator has to tear one connected Gaussian into
8 or 25 separated clusters, and a few spare dimensions make that folding easier for a small ReLU
net at negligible cost.
"""

from collections import OrderedDict
from collections.abc import Callable

from torch import nn

from .common import Generator, check_positive, check_shape, score_head

LATENT_DIM = 16
WIDTH = 128
DEPTH = 3


def _hidden(
    in_features: int, width: int, depth: int, activation: Callable[[], nn.Module]
) -> "OrderedDict[str, nn.Module]":
    sizes = [in_features] + [width] * depth
    return OrderedDict(
        (f"hidden{i + 1}", nn.Sequential(nn.Linear(a, b), activation()))
        for i, (a, b) in enumerate(zip(sizes, sizes[1:]))
    )


def generator(
    *, latent_dim: int = LATENT_DIM, width: int = WIDTH, depth: int = DEPTH, out_shape: tuple[int, ...]
) -> Generator:
    """z (N, latent_dim) -> ``depth`` x [Linear(width), ReLU] -> Linear -> (N, d)."""
    latent_dim = check_positive("generator.latent_dim", latent_dim)
    width = check_positive("generator.width", width)
    depth = check_positive("generator.depth", depth)
    (dim,) = check_shape("generator", "mlp", out_shape, (None,))
    blocks = _hidden(latent_dim, width, depth, nn.ReLU)
    blocks["out"] = nn.Linear(width, dim)
    return Generator(blocks, latent_dim=latent_dim, out_shape=(dim,), output_range=None)


def discriminator(*, width: int = WIDTH, depth: int = DEPTH, in_shape: tuple[int, ...]) -> nn.Sequential:
    """x (N, d) -> ``depth`` x [Linear(width), LeakyReLU(0.2)] -> Linear -> scores (N,)."""
    width = check_positive("discriminator.width", width)
    depth = check_positive("discriminator.depth", depth)
    (dim,) = check_shape("discriminator", "mlp", in_shape, (None,))
    blocks = _hidden(dim, width, depth, lambda: nn.LeakyReLU(0.2))
    blocks["score"] = score_head(width)
    return nn.Sequential(blocks)
