"""The MNIST networks of ICR (icr-competitive-gradient-descent, Appendix A.3, Tables 1 and 2).

``width`` scales every channel and unit count; the default 64 (the generator's 64-channel layer)
reproduces the tables exactly: generator 16w = 1024 units, 2w x 7 x 7 = 128 x 7 x 7, w x 14 x 14;
discriminator w/2 = 32 and w = 64 channels, 16w = 1024 units. Choices where the tables are
silent: transposed convolutions use padding 1 (7 -> 14 -> 28), discriminator convolutions none
(28 -> 24, 12 -> 8); the BatchNorm after a Linear is BatchNorm1d over its output units, before the
reshape to 2w x 7 x 7; LeakyReLU slope 0.2. Images lie in [-1, 1] (tanh output).
"""

from collections import OrderedDict

from torch import nn

from .common import Generator, check_positive, check_shape, score_head

LATENT_DIM = 96
WIDTH = 64
SHAPE = (1, 28, 28)


def generator(*, latent_dim: int = LATENT_DIM, width: int = WIDTH, out_shape: tuple[int, ...]) -> Generator:
    """Table 1: z -> Linear,BN,ReLU (16w) -> Linear,BN,ReLU (2w x 7 x 7) -> ConvT,BN,ReLU (w x 14 x 14)
    -> ConvT,Tanh (1 x 28 x 28)."""
    latent_dim = check_positive("generator.latent_dim", latent_dim)
    width = check_positive("generator.width", width)
    shape = check_shape("generator", "icr_mnist", out_shape, SHAPE)
    blocks = OrderedDict(
        fc1=nn.Sequential(nn.Linear(latent_dim, 16 * width), nn.BatchNorm1d(16 * width), nn.ReLU()),
        fc2=nn.Sequential(
            nn.Linear(16 * width, 2 * width * 7 * 7),
            nn.BatchNorm1d(2 * width * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (2 * width, 7, 7)),
        ),
        up1=nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        ),
        out=nn.Sequential(nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1), nn.Tanh()),
    )
    return Generator(blocks, latent_dim=latent_dim, out_shape=shape, output_range=(-1.0, 1.0))


def discriminator(*, width: int = WIDTH, in_shape: tuple[int, ...]) -> nn.Sequential:
    """Table 2: x -> Conv5,LReLU (w/2 x 24 x 24) -> MaxPool (w/2 x 12 x 12) -> Conv5,LReLU (w x 8 x 8)
    -> MaxPool (w x 4 x 4) -> Linear,LReLU (16w) -> Linear -> scores (N,)."""
    width = check_positive("discriminator.width", width, multiple_of=2)
    check_shape("discriminator", "icr_mnist", in_shape, SHAPE)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Sequential(nn.Conv2d(1, width // 2, 5), nn.LeakyReLU(0.2)),
            pool1=nn.MaxPool2d(2),
            conv2=nn.Sequential(nn.Conv2d(width // 2, width, 5), nn.LeakyReLU(0.2)),
            pool2=nn.MaxPool2d(2),
            fc=nn.Sequential(nn.Flatten(), nn.Linear(width * 4 * 4, 16 * width), nn.LeakyReLU(0.2)),
            score=score_head(16 * width),
        )
    )
