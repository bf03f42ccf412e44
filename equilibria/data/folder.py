"""A folder of image files (any layout), centre-cropped to squares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .dataset import Dataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def load_image_folder(root: str | Path, image_size: int, channels: int = 3) -> Dataset:
    """Every image under ``root`` (recursively, sorted by path) as uint8 ``(N, C, S, S)``.

    Each image is converted to RGB (``channels=3``) or grayscale (``channels=1``),
    resized bilinearly so its short side is ``image_size`` and centre-cropped.
    """
    root = Path(root)
    if channels not in (1, 3):
        raise ValueError(f"channels: must be 1 or 3, got {channels!r}")
    if image_size < 1:
        raise ValueError(f"image_size: must be >= 1 for the folder dataset, got {image_size}")
    if not root.is_dir():
        raise FileNotFoundError(f"root: image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(f"root: no image files ({', '.join(IMAGE_EXTENSIONS)}) under {root}")
    data = torch.empty(len(files), channels, image_size, image_size, dtype=torch.uint8)
    for i, path in enumerate(files):
        data[i] = _load_image(path, image_size, "L" if channels == 1 else "RGB")
    return Dataset("folder", data, None, "image")


def _load_image(path: Path, size: int, mode: str) -> torch.Tensor:
    """One image as uint8 ``(C, size, size)``: short side resized to ``size``, centre crop."""
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"root: cannot read image {path}: {error}") from error
    width, height = image.size
    scale = size / min(width, height)
    new_width, new_height = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_width, new_height), Image.Resampling.BILINEAR)
    left, top = (new_width - size) // 2, (new_height - size) // 2
    image = image.crop((left, top, left + size, top + size))
    array = np.asarray(image, dtype=np.uint8).reshape(size, size, -1)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)
