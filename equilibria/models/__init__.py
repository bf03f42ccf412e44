"""Generator and discriminator architectures, built by name.

``build_generator`` returns a module with attributes ``latent_dim``, ``out_shape`` and
``output_range`` mapping z (N, latent_dim) to (N, *out_shape); ``build_discriminator`` returns a
module mapping (N, *in_shape) to raw scores (N,) (logits or critic values, no sigmoid). Width and
latent size default to the architecture's paper values when None.

====================  =========================================  =======================
architecture          source                                     data shape
====================  =========================================  =======================
mlp                   2-D mixture benchmarks (no paper network)  (d,)
dcgan8                DCGAN for scikit-learn's 8 x 8 digits      (C, 8, 8)
advas_mnist           AdvAs Appendix E.1                         (1, 28, 28)
advas_mnist_bilinear  the same, bilinear upsampling (C.3)        (1, 28, 28)
icr_mnist             ICR Tables 1 and 2                         (1, 28, 28)
dcgan32               ICR Tables 4 and 5 (WGAN-GP DCGAN)         (C, 32, 32)
dcgan64               the same design, one layer more (CelebA)   (C, 64, 64)
stylegan2             Karras et al. 2020, config F (AdvAs 5.3)   (C, R, R), R = 2^k >= 4
autogan               AutoGAN's autogan_cifar10_a (AdvAs 5.2)    (C, 32, 32)
====================  =========================================  =======================
"""

from collections.abc import Callable

from torch import nn

from . import advas_mnist, autogan, dcgan, icr_mnist, mlp, stylegan2
from .common import Generator
from .init import INIT_SCHEMES, init_weights

_GENERATORS: dict[str, Callable[..., Generator]] = {
    "mlp": mlp.generator,
    "dcgan8": dcgan.generator8,
    "advas_mnist": advas_mnist.generator,
    "advas_mnist_bilinear": advas_mnist.generator_bilinear,
    "icr_mnist": icr_mnist.generator,
    "dcgan32": dcgan.generator32,
    "dcgan64": dcgan.generator64,
    "stylegan2": stylegan2.generator,
    "autogan": autogan.generator,
}
_DISCRIMINATORS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp.discriminator,
    "dcgan8": dcgan.discriminator8,
    "advas_mnist": advas_mnist.discriminator,
    "advas_mnist_bilinear": advas_mnist.discriminator,
    "icr_mnist": icr_mnist.discriminator,
    "dcgan32": dcgan.discriminator32,
    "dcgan64": dcgan.discriminator64,
    "stylegan2": stylegan2.discriminator,
    "autogan": autogan.discriminator,
}
ARCHITECTURES: tuple[str, ...] = tuple(_GENERATORS)

__all__ = ["ARCHITECTURES", "INIT_SCHEMES", "Generator", "build_discriminator", "build_generator", "init_weights"]


def _lookup(table: dict[str, Callable[..., nn.Module]], option: str, arch: str) -> Callable[..., nn.Module]:
    if arch not in table:
        raise ValueError(f"{option}: unknown architecture {arch!r}; allowed: {', '.join(ARCHITECTURES)}")
    return table[arch]


def _given(**kwargs: int | None) -> dict[str, int]:
    """The keyword arguments that are not None (None selects the architecture's default)."""
    return {name: value for name, value in kwargs.items() if value is not None}


def build_generator(
    arch: str, *, latent_dim: int | None = None, width: int | None = None, out_shape: tuple[int, ...]
) -> Generator:
    """The generator of architecture ``arch`` producing samples of shape ``out_shape``."""
    build = _lookup(_GENERATORS, "generator.arch", arch)
    return build(out_shape=out_shape, **_given(latent_dim=latent_dim, width=width))


def build_discriminator(arch: str, *, width: int | None = None, in_shape: tuple[int, ...]) -> nn.Module:
    """The discriminator (or critic) of architecture ``arch`` scoring samples of shape ``in_shape``."""
    build = _lookup(_DISCRIMINATORS, "discriminator.arch", arch)
    return build(in_shape=in_shape, **_given(width=width))
