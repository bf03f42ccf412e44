"""DCGAN networks: ``dcgan32`` for 32 x 32 images, ``dcgan64`` for 64 x 64 and ``dcgan8`` for 8 x 8.

``dcgan32`` is the WGAN-GP DCGAN of icr-competitive-gradient-descent, Appendix A.4, Tables 4
(generator) and 5 (discriminator), with ``width`` = 64 as in the tables: the generator goes
Linear,BN,ReLU -> 4w x 4 x 4 and three transposed convolutions (kernel 4, stride 2, padding 1)
to 2w x 8 x 8, w x 16 x 16 and C x 32 x 32 (BN and ReLU except Tanh at the end); the
discriminator mirrors it with convolutions (kernel 4, stride 2, padding 1) to w, 2w, 4w channels,
LeakyReLU, no normalisation, and a Linear to one score. C comes from the image shape (3 for
CIFAR-10 and stacked MNIST, 1 for MNIST padded to 32 x 32).

``dcgan64`` is the same design with four stride-2 layers (8w x 4 x 4 -> ... -> C x 64 x 64, and
back), for CelebA at 64 x 64 (the lens and VRAL papers' DCGANs; the width the tables' 64).

``dcgan8`` is the same design with two stride-2 layers instead of three (2 x 2 -> 4 x 4 -> 8 x 8),
for scikit-learn's 8 x 8 digits: G z (32) -> Linear,BN,ReLU 2w x 2 x 2 -> ConvT,BN,ReLU
w x 4 x 4 -> ConvT,Tanh C x 8 x 8; D Conv,LReLU w x 4 x 4 -> Conv,LReLU 2w x 2 x 2 -> Linear.
It has no BatchNorm in the discriminator, so gradient penalties are valid. Its default width is 32,
not 64: it is the CPU demo, and width 64 costs over twice as much per iteration (the 2w <-> w
layers dominate and scale with w^2) for no visible gain on 8 x 8 digits.

Choices where the tables are silent: the BatchNorm after the Linear is BatchNorm1d over its
output units, before the reshape; LeakyReLU slope 0.2. Images lie in [-1, 1] (tanh output).
"""

from collections import OrderedDict

from torch import nn

from .common import Generator, check_positive, check_shape, score_head

LATENT_DIM_32 = 128
LATENT_DIM_8 = 32
WIDTH_32 = 64
WIDTH_8 = 32


def _generator(arch: str, latent_dim: int, width: int, out_shape: tuple[int, ...], size: int, n_up: int) -> Generator:
    """Linear,BN,ReLU to (width * 2^(n_up-1)) x s x s, then n_up transposed convolutions doubling the size."""
    latent_dim = check_positive("generator.latent_dim", latent_dim)
    width = check_positive("generator.width", width)
    shape = check_shape("generator", arch, out_shape, (None, size, size))
    channels = [width * 2 ** (n_up - 1 - i) for i in range(n_up)] + [shape[0]]
    base = size // 2**n_up
    features = channels[0] * base * base
    blocks = OrderedDict(
        fc=nn.Sequential(
            nn.Linear(latent_dim, features),
            nn.BatchNorm1d(features),
            nn.ReLU(),
            nn.Unflatten(1, (channels[0], base, base)),
        )
    )
    for i, (c_in, c_out) in enumerate(zip(channels, channels[1:]), start=1):
        last = i == n_up
        blocks["out" if last else f"up{i}"] = nn.Sequential(
            nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
            *((nn.Tanh(),) if last else (nn.BatchNorm2d(c_out), nn.ReLU())),
        )
    return Generator(blocks, latent_dim=latent_dim, out_shape=shape, output_range=(-1.0, 1.0))


def _discriminator(arch: str, width: int, in_shape: tuple[int, ...], size: int, n_down: int) -> nn.Sequential:
    """n_down convolutions (kernel 4, stride 2) to width * 2^i channels with LeakyReLU(0.2), then a Linear score."""
    width = check_positive("discriminator.width", width)
    shape = check_shape("discriminator", arch, in_shape, (None, size, size))
    channels = [shape[0]] + [width * 2**i for i in range(n_down)]
    blocks = OrderedDict(
        (f"conv{i}", nn.Sequential(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)))
        for i, (c_in, c_out) in enumerate(zip(channels, channels[1:]), start=1)
    )
    final = size // 2**n_down
    blocks["score"] = score_head(channels[-1] * final * final)
    return nn.Sequential(blocks)


def generator32(*, latent_dim: int = LATENT_DIM_32, width: int = WIDTH_32, out_shape: tuple[int, ...]) -> Generator:
    """Table 4: z (128) -> 4w x 4 x 4 -> 2w x 8 x 8 -> w x 16 x 16 -> C x 32 x 32."""
    return _generator("dcgan32", latent_dim, width, out_shape, size=32, n_up=3)


def discriminator32(*, width: int = WIDTH_32, in_shape: tuple[int, ...]) -> nn.Sequential:
    """Table 5: C x 32 x 32 -> w x 16 x 16 -> 2w x 8 x 8 -> 4w x 4 x 4 -> scores (N,)."""
    return _discriminator("dcgan32", width, in_shape, size=32, n_down=3)


def generator8(*, latent_dim: int = LATENT_DIM_8, width: int = WIDTH_8, out_shape: tuple[int, ...]) -> Generator:
    """z (32) -> 2w x 2 x 2 -> w x 4 x 4 -> C x 8 x 8."""
    return _generator("dcgan8", latent_dim, width, out_shape, size=8, n_up=2)


def discriminator8(*, width: int = WIDTH_8, in_shape: tuple[int, ...]) -> nn.Sequential:
    """C x 8 x 8 -> w x 4 x 4 -> 2w x 2 x 2 -> scores (N,)."""
    return _discriminator("dcgan8", width, in_shape, size=8, n_down=2)


def generator64(*, latent_dim: int = LATENT_DIM_32, width: int = WIDTH_32, out_shape: tuple[int, ...]) -> Generator:
    """z (128) -> 8w x 4 x 4 -> 4w x 8 x 8 -> 2w x 16 x 16 -> w x 32 x 32 -> C x 64 x 64."""
    return _generator("dcgan64", latent_dim, width, out_shape, size=64, n_up=4)


def discriminator64(*, width: int = WIDTH_32, in_shape: tuple[int, ...]) -> nn.Sequential:
    """C x 64 x 64 -> w x 32 x 32 -> 2w x 16 x 16 -> 4w x 8 x 8 -> 8w x 4 x 4 -> scores (N,)."""
    return _discriminator("dcgan64", width, in_shape, size=64, n_down=4)
