"""Inception-v3 as in the TensorFlow FID graph (Heusel et al. 2017), and its input preprocessing.

The network is the one in ``inception-2015-12-05`` (the graph of the original FID code, TTUR),
laid out so that its state dict has exactly the names and shapes of the weights file
``pt_inception-2015-12-05-6726825d.pth`` that pytorch-fid and torch-fidelity load (torchvision's
names: ``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, ..., ``fc.bias``).
It differs from torchvision's ImageNet Inception-v3 where the TF graph does:

- the average pooling branches of the A, C and E blocks leave the zero padding out of the mean
  (``count_include_pad=False``);
- the last E block (``Mixed_7c``) pools its pooling branch with a 3x3 *max* pool;
- the classifier ``fc`` has 1008 outputs; BatchNorm uses eps = 0.001; there is no auxiliary head.

``preprocess`` turns images into the graph's input, in the order the reference pipelines use:

1. **uint8 levels.** Float images in ``value_range`` are clamped to it, mapped linearly to
   [0, 255] and rounded half up, ``floor(255 * t + 0.5)``, which is what saving a PNG does
   (torchvision's ``save_image``, ``equilibria.images.make_grid``); NaN becomes the low end. uint8
   images are taken as they are. Generated and real images thus reach the network the same way
   as if both had been written to PNG files, as the reference implementations read them.
2. **Grey to RGB** by repeating the channel (what PIL's ``convert("RGB")`` does).
3. **Resize to 299 x 299, bilinear, without antialiasing**, on the 0..255 values, by one of two
   conventions (``resize``):

   - ``"tensorflow"`` (default): TensorFlow 1's ``ResizeBilinear`` with ``align_corners=False``
     and no half-pixel centres, i.e. output pixel ``i`` samples input coordinate
     ``i * in / out``. This is the resize inside the FID graph, so it matches the original
     TensorFlow FID and torch-fidelity (which reimplements exactly this).
   - ``"pytorch"``: ``F.interpolate(mode="bilinear", align_corners=False, antialias=False)``
     (half-pixel centres, ``(i + 0.5) * in / out - 0.5``), as pytorch-fid resizes.

   Neither antialiases, so downscaling large images aliases exactly as the references do;
   GAN images (8 to 64 pixels) are only ever upscaled, where antialiasing changes nothing.
   clean-fid's default instead resizes with PIL's antialiased bicubic filter on float values;
   its numbers are not comparable with these.
4. **The graph's normalisation** ``(x - 128) / 128``, mapping 0..255 to [-1, 0.9921875]
   (pytorch-fid uses ``2 * x / 255 - 1`` instead, i.e. [-1, 1]).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
RESIZE_MODES = ("tensorflow", "pytorch")


class ConvBN(nn.Module):
    """Convolution without bias, BatchNorm (eps 0.001), ReLU: torchvision's ``BasicConv2d``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_3x3(x: Tensor) -> Tensor:
    """The TF graph's 3x3 average pool: padded borders average only the pixels inside."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    """35 x 35 block (Mixed_5b..5d): 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBN(in_channels, 64, 1)
        self.branch5x5_1 = ConvBN(in_channels, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(in_channels, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_3x3(x)),
        ], dim=1)


class BlockB(nn.Module):
    """Reduction 35 -> 17 (Mixed_6a): strided 3x3, strided double 3x3, max pool."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class BlockC(nn.Module):
    """17 x 17 block (Mixed_6b..6e): factorised 7x7 convolutions with ``channels_7x7`` inside."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = ConvBN(in_channels, 192, 1)
        self.branch7x7_1 = ConvBN(in_channels, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(in_channels, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        double = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = conv(double)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(_avg_pool_3x3(x)),
        ], dim=1)


class BlockD(nn.Module):
    """Reduction 17 -> 8 (Mixed_7a): 3x3 and 7x7-then-3x3 strided branches, max pool."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBN(in_channels, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(in_channels, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            seven,
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class BlockE(nn.Module):
    """8 x 8 block (Mixed_7b, 7c): split 1x3 / 3x1 branches; ``max_pool`` for the last one (TF graph)."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBN(in_channels, 320, 1)
        self.branch3x3_1 = ConvBN(in_channels, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(in_channels, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool_3x3(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(single), self.branch3x3_2b(single),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(pooled),
        ], dim=1)


class InceptionOutput(NamedTuple):
    """What :class:`FIDInceptionV3` returns for a batch of N images.

    ``features``: (N, 2048) the pooled ``pool_3`` activations, FID's and KID's features.
    ``logits``: (N, 1008) ``fc(features)``, the classifier with its bias.
    ``logits_unbiased``: (N, 1008) ``features @ fc.weight.T`` without the bias: the logits the
    reference Inception Score code (Salimans et al. 2016) takes the softmax of, and torch-fidelity's
    default for IS. Use these for IS.
    """

    features: Tensor
    logits: Tensor
    logits_unbiased: Tensor


class FIDInceptionV3(nn.Module):
    """Inception-v3 of the TF FID graph. Input: preprocessed images (N, 3, H, W), H, W >= 75
    (299 x 299 from :func:`preprocess`); output: :class:`InceptionOutput`.

    ``channels_last``: run the convolutions on a channels-last copy of the input (the same
    numbers up to round-off; faster on CPU, see benchmarks/feature_throughput.py).
    """

    def __init__(self, channels_last: bool = True) -> None:
        super().__init__()
        self.channels_last = channels_last
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = BlockA(192, pool_features=32)
        self.Mixed_5c = BlockA(256, pool_features=64)
        self.Mixed_5d = BlockA(288, pool_features=64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, channels_7x7=128)
        self.Mixed_6c = BlockC(768, channels_7x7=160)
        self.Mixed_6d = BlockC(768, channels_7x7=160)
        self.Mixed_6e = BlockC(768, channels_7x7=192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, max_pool=False)
        self.Mixed_7c = BlockE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, x: Tensor) -> InceptionOutput:
        if x.dim() != 4 or x.shape[1] != 3 or min(x.shape[2:]) < 75:
            raise ValueError(f"FIDInceptionV3: input must be (N, 3, H, W) with H, W >= 75 "
                             f"(299 after preprocess); got shape {tuple(x.shape)}")
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        features = x.mean(dim=(2, 3))
        logits_unbiased = features @ self.fc.weight.T
        return InceptionOutput(features, logits_unbiased + self.fc.bias, logits_unbiased)


def to_uint8_levels(images: Tensor, value_range: tuple[float, float] | None) -> Tensor:
    """Images as float32 holding the integers 0..255 that saving them as PNG would store.

    uint8 images are converted as they are (``value_range`` must then be None or (0, 255));
    float images are clamped to ``value_range``, scaled to [0, 255] and rounded half up, NaN -> 0.
    """
    if images.dtype == torch.uint8:
        if value_range is not None and tuple(value_range) != (0, 255):
            raise ValueError(f"preprocess: value_range {value_range} given for uint8 images; "
                             "allowed: None or (0, 255)")
        return images.float()
    if not images.is_floating_point():
        raise ValueError(f"preprocess: images of dtype {images.dtype}; allowed: uint8 or a float dtype")
    if value_range is None:
        raise ValueError("preprocess: float images need value_range, e.g. (-1, 1) or (0, 1)")
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"preprocess: value_range must be (low, high) with low < high; got {value_range}")
    scaled = ((images.double() - low) / (high - low)).nan_to_num(nan=0.0).clamp(0.0, 1.0)
    return torch.floor(scaled * 255 + 0.5).float()


def _tf1_axis(in_size: int, out_size: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Source indices below/above and the weight of the upper one, as TF1 computes them (float32)."""
    source = torch.arange(out_size, dtype=torch.float32, device=device) * torch.tensor(
        in_size / out_size, dtype=torch.float32)
    lower = source.long()
    return lower, (lower + 1).clamp(max=in_size - 1), source - lower


def resize_bilinear(images: Tensor, size: int, mode: str = "tensorflow") -> Tensor:
    """Bilinear resize of float images (N, C, H, W) to (size, size) without antialiasing.

    ``"tensorflow"``: TF1 ``ResizeBilinear(align_corners=False)``, source ``i * in / out``;
    ``"pytorch"``: ``F.interpolate(align_corners=False)``, source ``(i + 0.5) * in / out - 0.5``.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize: unknown mode {mode!r}; allowed: {', '.join(RESIZE_MODES)}")
    if images.shape[-2:] == (size, size):
        return images
    if mode == "pytorch":
        return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    rows_lo, rows_hi, row_w = _tf1_axis(images.shape[2], size, images.device)
    cols_lo, cols_hi, col_w = _tf1_axis(images.shape[3], size, images.device)
    top, bottom = images[:, :, rows_lo], images[:, :, rows_hi]
    top = top[..., cols_lo] + (top[..., cols_hi] - top[..., cols_lo]) * col_w
    bottom = bottom[..., cols_lo] + (bottom[..., cols_hi] - bottom[..., cols_lo]) * col_w
    return top + (bottom - top) * row_w[:, None]


def preprocess(images: Tensor, value_range: tuple[float, float] | None = None,
               resize: str = "tensorflow") -> Tensor:
    """The FID graph's input from images (N, 1 or 3, H, W): float32 (N, 3, 299, 299).

    uint8 levels (PNG rounding) -> grey repeated to RGB -> bilinear resize to 299 (``resize``:
    ``"tensorflow"`` or ``"pytorch"``, see the module docstring) -> (x - 128) / 128.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(f"preprocess: images must be (N, C, H, W) with N >= 1 and C = 1 or 3; "
                         f"got shape {tuple(images.shape)}")
    if resize not in RESIZE_MODES:
        raise ValueError(f"preprocess: unknown resize {resize!r}; allowed: {', '.join(RESIZE_MODES)}")
    levels = resize_bilinear(to_uint8_levels(images, value_range), INPUT_SIZE, resize)
    return ((levels - 128) / 128).expand(-1, 3, -1, -1).contiguous()
