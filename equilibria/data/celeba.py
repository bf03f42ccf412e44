"""CelebA (Liu et al. 2015) from its aligned images, centre-cropped and resized, cached once decoded.

``root`` holds ``img_align_celeba/`` (the 202,599 aligned 178x218 JPEG files, 000001.jpg ...) and,
for the train and test splits, the official ``list_eval_partition.txt`` (``000001.jpg 0`` per line:
0 train, 1 validation, 2 test). Each image is cut to its centre ``crop`` x ``crop`` square (108, the
customary crop of DCGAN's CelebA: the face, without the background) and resized bilinearly (with
antialiasing) to ``image_size``. Decoding the whole set takes minutes, so the uint8 tensor is cached
in ``<cache>/datasets/`` (``equilibria.files.cache_dir``), keyed by the split, the sizes and the
names and byte sizes of the files read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from equilibria.files import cache_dir, write_atomically

from .dataset import Dataset, check_split

FOLDER = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
CROP = 108
_PARTS = {"train": ("0",), "test": ("2",)}  # the validation part (1) belongs to neither, as in the papers


def load_celeba(root: str | Path, split: str = "train", image_size: int = 64, crop: int = CROP,
                cache: bool = True) -> Dataset:
    """CelebA ``split`` ("train", "test" or "all") as uint8 ``(N, 3, image_size, image_size)``."""
    check_split(split)
    if image_size < 1 or crop < 1:
        raise ValueError(f"image_size, crop: got {image_size}, {crop}; allowed: integers >= 1")
    root = Path(root)
    folder = root / FOLDER
    if not folder.is_dir():
        raise FileNotFoundError(f"CelebA: {folder} does not exist; allowed: data.root holding {FOLDER}/ (the "
                                "aligned images of https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) and, "
                                f"for the train and test splits, {PARTITION}")
    names = _names(root, folder, split)
    files = [folder / name for name in names]
    missing = [str(f) for f in files[:1000] if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"CelebA: {len(missing)}+ images listed in {PARTITION} are missing, e.g. {missing[0]}")
    key = hashlib.sha256(f"{split};{image_size};{crop};".encode())
    for f in files:
        key.update(f"{f.name}:{f.stat().st_size};".encode())
    path = cache_dir() / "datasets" / f"celeba-{split}-{image_size}-{crop}-{key.hexdigest()[:16]}.npy"
    if cache and path.is_file():
        data = torch.from_numpy(np.load(path, allow_pickle=False))
    else:
        data = torch.empty(len(files), 3, image_size, image_size, dtype=torch.uint8)
        for i, f in enumerate(files):
            data[i] = centre_crop_resize(f, crop, image_size)
        if cache:
            write_atomically(path, lambda handle: np.save(handle, data.numpy(), allow_pickle=False))
    return Dataset("celeba", data, None, "image")


def _names(root: Path, folder: Path, split: str) -> list[str]:
    """The image file names of ``split``, in the partition file's order (sorted for "all")."""
    if split == "all":
        names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not names:
            raise ValueError(f"CelebA: no images (.jpg, .png) in {folder}")
        return names
    partition = root / PARTITION
    if not partition.is_file():
        raise FileNotFoundError(f"CelebA split {split!r}: {partition} does not exist (the official partition file); "
                                "allowed without it: split all")
    names = []
    for number, line in enumerate(partition.read_text().splitlines(), 1):
        fields = line.split()
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise ValueError(f"{partition}, line {number}: got {line!r}; allowed: '<image file> <0, 1 or 2>'")
        if fields[1] in _PARTS[split]:
            names.append(fields[0])
    if not names:
        raise ValueError(f"CelebA split {split!r}: {partition} lists no image of it")
    return names


def centre_crop_resize(path: Path, crop: int, size: int) -> torch.Tensor:
    """One image as uint8 ``(3, size, size)``: its centre ``crop`` x ``crop`` square (the whole short
    side if smaller), resized bilinearly with antialiasing."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"CelebA: cannot read image {path}: {error}") from error
    width, height = image.size
    side = min(crop, width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
