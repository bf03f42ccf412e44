"""StyleGAN2 (Karras et al. 2020, "Analyzing and improving the image quality of StyleGAN", config F):
the skip generator and the residual discriminator, in plain PyTorch (no custom CUDA kernels, so that
every method can differentiate through them to any order).

Generator: z -> 2nd-moment normalisation -> mapping network (8 equalised fully connected layers, learning
rate x 0.01, leaky ReLU) -> w, broadcast to one w per layer (``num_ws`` = 2 log2(R) - 2). Synthesis from a
learned 4 x 4 constant: per resolution two 3 x 3 modulated convolutions (the first upsampling by 2),
each weight scaled per input channel by an affine map of w (bias 1) and demodulated (Eq. 1-3 of the
paper), per-pixel noise times a learned strength (0 at first), a bias and leaky ReLU (0.2, gain sqrt 2);
a 1 x 1 modulated convolution without demodulation to RGB at every resolution, summed into the
upsampled image of the resolution below (the skip architecture; linear output). In training, with
probability ``style_mixing`` (0.9) the layers from a random cutoff on take the w of a second latent code.
Noise is drawn afresh in training and fixed (drawn at construction) in eval mode. The per-sample draws
(noise, the second codes) come from the generator's ``draw_batch``: under data parallelism the trainer
gives it the draw of the global batch's share, so N processes draw what one process would.

Discriminator: 1 x 1 from RGB at full resolution, then residual blocks down to 4 x 4 (3 x 3 conv, 3 x 3
conv after downsampling, a 1 x 1 downsampled skip without bias, the sum times sqrt 1/2), then the
minibatch standard deviation (groups of ``mbstd_group``, 4, within each process's share of the batch as
in StyleGAN2-ADA; one feature), a 3 x 3 conv, a fully connected layer and the
score. Every layer uses the equalised learning rate (weights N(0, 1) scaled by 1/sqrt(fan-in) at run
time). Resampling filters are the paper's [1, 3, 3, 1]; the discriminator downsamples before its strided
convolution's 3 x 3 kernel instead of fusing the two (the function class is the same).

``width`` is the channel maximum (512 in the paper); a resolution R has min(64 * width / R, width)
channels, so at 64 x 64 and below every layer has ``width``, as config F. Not here: truncation (a
sampling trick, not training), the tracked average w, the lazy regularisers (``equilibria.methods.stylegan2``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from equilibria.randomness import draw, draw_batch

from .common import check_positive, check_shape

LATENT_DIM = 512
WIDTH = 512
MAPPING_LAYERS = 8
MAPPING_LR = 0.01
STYLE_MIXING = 0.9
MBSTD_GROUP = 4
_GAIN = math.sqrt(2.0)  # leaky ReLU's gain


def _fir(x: Tensor) -> Tensor:
    """The 2-D filter [1, 3, 3, 1] x [1, 3, 3, 1] / 64, one copy per channel of ``x``."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=x.dtype, device=x.device)
    return (torch.outer(k, k) / 64).expand(x.shape[1], 1, 4, 4)


def upsample2d(x: Tensor) -> Tensor:
    """Double the resolution: zeros inserted, then the [1, 3, 3, 1] filter (gain 4 keeps the mean)."""
    return F.conv_transpose2d(x, _fir(x) * 4, stride=2, padding=1, groups=x.shape[1])


def downsample2d(x: Tensor) -> Tensor:
    """Halve the resolution: the [1, 3, 3, 1] filter with stride 2."""
    return F.conv2d(F.pad(x, (1, 1, 1, 1)), _fir(x), stride=2, groups=x.shape[1])


def _act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2) * _GAIN


class EqualLinear(nn.Module):
    """A fully connected layer with the equalised learning rate (and a learning-rate multiplier)."""

    def __init__(self, in_features: int, out_features: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul))
        self.scale, self.lr_mul, self.activation = lr_mul / math.sqrt(in_features), lr_mul, activation

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return _act(x) if self.activation else x


class EqualConv2d(nn.Module):
    """A convolution with the equalised learning rate; ``down`` halves the resolution first."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, *, bias: bool = True,
                 activation: bool = False, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale, self.activation, self.down = 1 / math.sqrt(in_channels * kernel * kernel), activation, down

    def forward(self, x: Tensor) -> Tensor:
        if self.down:
            x = downsample2d(x)
        x = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)
        return _act(x) if self.activation else x


class ModulatedConv2d(nn.Module):
    """Eq. 1-3: weights scaled per input channel by the style s = A(w), then (``demodulate``) divided by
    the norm of each output channel's weights; one grouped convolution for the whole batch."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, w_dim: int, *, demodulate: bool = True,
                 up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.scale, self.demodulate, self.up = 1 / math.sqrt(in_channels * kernel * kernel), demodulate, up

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        n, out_channels, in_channels, kernel = len(x), *self.weight.shape[:3]
        styles = self.affine(w)
        weight = self.weight[None] * self.scale * styles[:, None, :, None, None]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        if self.up:
            x = upsample2d(x)
        x = F.conv2d(x.reshape(1, n * in_channels, *x.shape[2:]),
                     weight.reshape(n * out_channels, in_channels, kernel, kernel), padding=kernel // 2, groups=n)
        return x.reshape(n, out_channels, *x.shape[2:])


class SynthesisLayer(nn.Module):
    """Modulated 3 x 3 convolution, per-pixel noise times a learned strength, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: Tensor, w: Tensor, draw_noise: Callable[..., Tensor] = draw_batch) -> Tensor:
        x = self.conv(x, w)
        if self.training:
            noise = draw_noise(torch.randn, len(x), 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const
        return _act(x + noise * self.noise_strength + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """A 1 x 1 modulated convolution without demodulation, and a bias (linear)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution: (the 4 x 4 constant, or an upsampling layer) and a layer, then to RGB, added to
    the upsampled image so far. Reads ``num_ws`` = its layers + 1 consecutive ws (the next block's
    first w is this block's RGB w, as in the official code)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, image_channels: int):
        super().__init__()
        self.first = resolution == 4
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, image_channels, w_dim)
        self.num_layers = 1 if self.first else 2

    def forward(self, x: Tensor | None, image: Tensor | None, ws: Tensor,
                draw_noise: Callable[..., Tensor] = draw_batch) -> tuple[Tensor, Tensor]:
        if self.first:
            x = self.const[None].expand(len(ws), -1, -1, -1)
            x = self.conv1(x, ws[:, 0], draw_noise)
        else:
            x = self.conv1(self.conv0(x, ws[:, 0], draw_noise), ws[:, 1], draw_noise)
        rgb = self.torgb(x, ws[:, self.num_layers])
        return x, rgb if image is None else upsample2d(image) + rgb


def channels(resolution: int, width: int) -> int:
    """Channels at ``resolution``: min(64 * width / resolution, width), at least 1."""
    return max(1, min(64 * width // resolution, width))


def _resolution(role: str, shape: tuple[int, ...]) -> int:
    shape = check_shape(role, "stylegan2", shape, (None, None, None))
    size = shape[1]
    if shape[2] != size or size < 4 or size & (size - 1):
        raise ValueError(f"{role}.arch: architecture 'stylegan2' does not support the shape {shape!r}; allowed: "
                         "(C, R, R) with R a power of 2, at least 4")
    return size


class MappingNetwork(nn.Module):
    """z -> normalised by its root mean square -> ``layers`` x [equalised linear (lr x 0.01), leaky ReLU]."""

    def __init__(self, latent_dim: int, w_dim: int, layers: int = MAPPING_LAYERS):
        super().__init__()
        self.net = nn.Sequential(*[EqualLinear(latent_dim if i == 0 else w_dim, w_dim, lr_mul=MAPPING_LR,
                                               activation=True) for i in range(layers)])

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8))


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, C, R, R); ``mapping_ws`` and ``synthesis`` are its two halves
    (the path-length penalty differentiates the images by the ws)."""

    def __init__(self, *, latent_dim: int = LATENT_DIM, width: int = WIDTH, out_shape: tuple[int, ...],
                 style_mixing: float = STYLE_MIXING):
        super().__init__()
        self.latent_dim = check_positive("generator.latent_dim", latent_dim)
        width = check_positive("generator.width", width)
        resolution = _resolution("generator", out_shape)
        self.out_shape, self.output_range = tuple(out_shape), None
        self.w_dim, self.style_mixing = width, style_mixing
        self.draw_batch = draw_batch  # the per-sample draws in training; the trainer gives its data-parallel one
        self.mapping = MappingNetwork(self.latent_dim, width)
        resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        self.blocks = nn.ModuleList(SynthesisBlock(channels(r // 2, width), channels(r, width), width, r, out_shape[0])
                                    for r in resolutions)
        self.num_ws = sum(block.num_layers for block in self.blocks) + 1

    def mapping_ws(self, z: Tensor) -> Tensor:
        """(N, num_ws, w_dim): w for every layer. In training, the layers from a random cutoff (1 to
        num_ws - 1) on take the w of a second code with probability ``style_mixing``, one cutoff for
        the batch (the draws are made whether or not it mixes, as in the official code); eval mode
        neither mixes nor draws."""
        ws = self.mapping(z)[:, None].repeat(1, self.num_ws, 1)
        if self.training and self.style_mixing > 0:
            cutoff = 1 + int(draw(torch.rand, 1).item() * (self.num_ws - 1))
            mix = draw(torch.rand, 1).item() < self.style_mixing
            other = self.mapping(self.draw_batch(torch.randn, len(z), self.latent_dim, device=z.device, dtype=z.dtype))
            if mix:
                ws = torch.cat([ws[:, :cutoff], other[:, None].expand(-1, self.num_ws - cutoff, -1)], dim=1)
        return ws

    def synthesis(self, ws: Tensor) -> Tensor:
        x = image = None
        index = 0
        for block in self.blocks:
            x, image = block(x, image, ws[:, index:index + block.num_layers + 1], self.draw_batch)
            index += block.num_layers
        return image

    def forward(self, z: Tensor) -> Tensor:
        return self.synthesis(self.mapping_ws(z))


def minibatch_std(x: Tensor, group_size: int = MBSTD_GROUP) -> Tensor:
    """Append one feature map: the standard deviation of each feature over a group of samples (samples
    i, i + N/G, ...), averaged over features and pixels. G is the largest divisor of N up to ``group_size``."""
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    y = x.reshape(g, n // g, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt().mean(dim=(1, 2, 3))
    return torch.cat([x, y.repeat(g)[:, None, None, None].expand(n, 1, h, w)], dim=1)


class DiscriminatorBlock(nn.Module):
    """conv 3 x 3, conv 3 x 3 at half resolution; plus a downsampled 1 x 1 skip; the sum times sqrt 1/2."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3, activation=True)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, activation=True, down=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, down=True)

    def forward(self, x: Tensor) -> Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)


class Discriminator(nn.Module):
    """images (N, C, R, R) -> raw scores (N,)."""

    def __init__(self, *, width: int = WIDTH, in_shape: tuple[int, ...], mbstd_group: int = MBSTD_GROUP):
        super().__init__()
        width = check_positive("discriminator.width", width)
        self.mbstd_group = mbstd_group
        resolution = _resolution("discriminator", in_shape)
        self.from_rgb = EqualConv2d(in_shape[0], channels(resolution, width), 1, activation=True)
        resolutions = [2 ** i for i in range(int(math.log2(resolution)), 2, -1)]
        self.blocks = nn.Sequential(*[DiscriminatorBlock(channels(r, width), channels(r // 2, width))
                                      for r in resolutions])
        c4 = channels(4, width)
        self.conv = EqualConv2d(c4 + 1, c4, 3, activation=True)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.out = EqualLinear(c4, 1)

    @property
    def mbstd_group(self) -> int:
        """Samples per minibatch-standard-deviation group (1: off); checked when set, as the builder sets it."""
        return self._mbstd_group

    @mbstd_group.setter
    def mbstd_group(self, value: int) -> None:
        self._mbstd_group = check_positive("mbstd_group", value)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(minibatch_std(self.blocks(self.from_rgb(x)), self.mbstd_group))
        return self.out(self.fc(x.flatten(1))).squeeze(1)


def generator(*, latent_dim: int = LATENT_DIM, width: int = WIDTH, out_shape: tuple[int, ...]) -> Generator:
    return Generator(latent_dim=latent_dim, width=width, out_shape=out_shape)


def discriminator(*, width: int = WIDTH, in_shape: tuple[int, ...]) -> Discriminator:
    return Discriminator(width=width, in_shape=in_shape)
