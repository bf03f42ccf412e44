"""The WGAN-GP MNIST networks of AdvAs (advas-assisting-the-adversary, Appendix E.1).

The appendix fixes the layer types and channel counts and defers the rest to the authors' code,
which is not available here. Choices where the text is silent:

* Generator up-sampling transposed convolutions: kernel 4, stride 2, padding 1 (7 -> 14 -> 28);
  the final transposed convolution to 1 channel: kernel 3, stride 1, padding 1 (28 -> 28).
* Discriminator convolutions: kernel 4, stride 2, padding 1, mirroring the generator
  (28 -> 14 -> 7 -> 3), so the final Linear reads 4 * width * 3 * 3 features.
* InstanceNorm2d with PyTorch's defaults (no affine parameters, no running statistics), ReLU
  (not LeakyReLU) in both networks, as the appendix says.

``width`` is the generator's first (7 x 7) channel count, halved by each block (64, 32, 16 by
default), and the discriminator's first channel count, doubled by each block (64, 128, 256).
Images lie in [0, 1] (sigmoid output).

``advas_mnist_bilinear`` is the generator of Appendix C.3 (training on r alone), which "uses bilinear
upsampling rather than transposed convolutions": each upsampling transposed convolution becomes a
bilinear x2 upsampling and a 3 x 3 convolution (padding 1); the rest, and the discriminator, as E.1.
"""

from collections import OrderedDict

from torch import nn

from .common import Generator, check_positive, check_shape, score_head

LATENT_DIM = 128
WIDTH = 64
SHAPE = (1, 28, 28)


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1),
        nn.InstanceNorm2d(out_channels),
        nn.ReLU(),
    )


def _down(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1),
        nn.InstanceNorm2d(out_channels),
        nn.ReLU(),
    )


def _up_bilinear(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.InstanceNorm2d(out_channels),
        nn.ReLU(),
    )


def generator(*, latent_dim: int = LATENT_DIM, width: int = WIDTH, out_shape: tuple[int, ...],
              bilinear: bool = False) -> Generator:
    """z -> Linear,ReLU (w x 7 x 7) -> 2 x [ConvT halving channels, InstanceNorm, ReLU]
    -> ConvT,Sigmoid (1 x 28 x 28); w = width.
    """
    latent_dim = check_positive("generator.latent_dim", latent_dim)
    width = check_positive("generator.width", width, multiple_of=4)
    shape = check_shape("generator", "advas_mnist_bilinear" if bilinear else "advas_mnist", out_shape, SHAPE)
    up = _up_bilinear if bilinear else _up
    blocks = OrderedDict(
        fc=nn.Sequential(nn.Linear(latent_dim, width * 7 * 7), nn.ReLU(), nn.Unflatten(1, (width, 7, 7))),
        up1=up(width, width // 2),
        up2=up(width // 2, width // 4),
        out=nn.Sequential(nn.ConvTranspose2d(width // 4, 1, 3, stride=1, padding=1), nn.Sigmoid()),
    )
    return Generator(blocks, latent_dim=latent_dim, out_shape=shape, output_range=(0.0, 1.0))


def discriminator(*, width: int = WIDTH, in_shape: tuple[int, ...]) -> nn.Sequential:
    """x (1 x 28 x 28) -> 3 x [Conv to w, 2w, 4w channels, InstanceNorm, ReLU] -> Linear -> scores (N,)."""
    width = check_positive("discriminator.width", width)
    check_shape("discriminator", "advas_mnist", in_shape, SHAPE)
    return nn.Sequential(
        OrderedDict(
            conv1=_down(1, width),
            conv2=_down(width, 2 * width),
            conv3=_down(2 * width, 4 * width),
            score=score_head(4 * width * 3 * 3),
        )
    )


def generator_bilinear(*, latent_dim: int = LATENT_DIM, width: int = WIDTH, out_shape: tuple[int, ...]) -> Generator:
    """Appendix C.3: as ``generator`` with bilinear upsampling and 3 x 3 convolutions."""
    return generator(latent_dim=latent_dim, width=width, out_shape=out_shape, bilinear=True)
