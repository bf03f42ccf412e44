"""Image grids and scatter plots written as PNG files, without torchvision or pyplot.

All writes are atomic: the PNG goes to a temporary file in the target directory, which then
replaces the target, so a reader never sees a half-written file.
"""

import math
import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from equilibria.files import write_atomically


def make_grid(
    images: Tensor,
    nrow: int = 8,
    padding: int = 2,
    value_range: tuple[float, float] = (-1.0, 1.0),
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tile images (N, C, H, W) into one uint8 array (H', W', C), like torchvision's make_grid + save_image.

    Rows hold ``nrow`` images (fewer if N < nrow), filled left to right, top to bottom; the tiles are
    separated and surrounded by ``padding`` pixels of ``pad_value``, an intensity in [0, 1] (1 =
    white) as in torchvision. Pixels are clamped to ``value_range``, mapped linearly to 0..255 and
    rounded (halves up); NaN maps to the low end. The channel axis is kept, also for C = 1
    (``save_png`` writes (H', W', 1) as grayscale).
    """
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"make_grid: images must be a non-empty (N, C, H, W) tensor; got shape {tuple(images.shape)}")
    if nrow < 1 or padding < 0:
        raise ValueError(f"make_grid: nrow must be >= 1 and padding >= 0; got nrow={nrow}, padding={padding}")
    low, high = value_range
    if not high > low:
        raise ValueError(f"make_grid: value_range must be (low, high) with low < high; got {value_range}")
    n, channels, height, width = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    scaled = (images.detach().to("cpu", torch.float64) - low) / (high - low)
    scaled = torch.nan_to_num(scaled, nan=0.0).clamp(0.0, 1.0)
    grid = torch.full(
        (channels, rows * (height + padding) + padding, cols * (width + padding) + padding),
        float(pad_value),
        dtype=torch.float64,
    )
    for index, image in enumerate(scaled):
        top = padding + (index // cols) * (height + padding)
        left = padding + (index % cols) * (width + padding)
        grid[:, top : top + height, left : left + width] = image
    return torch.floor(grid * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


READABLE_SIDE = 512


def enlarge(array: np.ndarray, min_side: int = READABLE_SIDE) -> np.ndarray:
    """Repeat every pixel of an (H, W[, C]) image k times along both axes, k the smallest integer that
    makes its longer side at least ``min_side`` (1 if it already is): nearest-neighbour upscaling,
    exact pixels, so that a grid of 8x8 digits is legible."""
    factor = max(1, math.ceil(min_side / max(array.shape[:2])))
    return array.repeat(factor, axis=0).repeat(factor, axis=1)


def save_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 image (H, W), (H, W, 1) (grayscale), (H, W, 3) (RGB) or (H, W, 4) (RGBA) as a PNG."""
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))):
        raise ValueError(
            f"save_png: array must be uint8 (H, W) or (H, W, C) with C in 1, 3, 4; got {array.dtype} {array.shape}"
        )
    image = Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    write_atomically(path, lambda file: image.save(file, format="PNG"))


def _points(name: str, points: Tensor | np.ndarray) -> np.ndarray:
    array = points.detach().cpu().numpy() if isinstance(points, Tensor) else np.asarray(points)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"scatter_png: {name} must have shape (N, 2); got {array.shape}")
    return array


def scatter_png(
    path: str | os.PathLike,
    fake: Tensor,
    real: Tensor | None = None,
    centers: Tensor | np.ndarray | None = None,
    title: str | None = None,
) -> None:
    """Scatter generated 2-D points (blue) over real points (grey) and mode centres (red crosses) into a PNG."""
    fake = _points("fake", fake)
    figure = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if real is not None:
        real = _points("real", real)
        axes.scatter(real[:, 0], real[:, 1], s=4, c="0.7", alpha=0.5, linewidths=0, label="real")
    axes.scatter(fake[:, 0], fake[:, 1], s=4, c="tab:blue", alpha=0.6, linewidths=0, label="generated")
    if centers is not None:
        centers = _points("centers", centers)
        axes.scatter(centers[:, 0], centers[:, 1], s=40, c="tab:red", marker="x", label="mode centres")
    axes.set_aspect("equal", adjustable="datalim")
    axes.legend(loc="upper right", fontsize="small", markerscale=2)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    save_figure(figure, path)


def save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Write a matplotlib Figure as a PNG, atomically."""
    FigureCanvasAgg(figure)
    write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=100))
    return Path(path)
