"""Dataset names and the single entry point that loads any of them."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from .celeba import load_celeba
from .cifar import load_cifar10
from .dataset import Dataset, check_split
from .digits import load_digits
from .folder import load_image_folder
from .mixtures import grid, ring
from .mnist import load_mnist
from .stacked import stacked_mnist
from .transforms import resize_images

DATASETS = ("digits", "mnist", "stacked_mnist", "ring", "grid", "cifar10", "celeba", "folder")
DEFAULT_NUM_POINTS = 100_000
_POINTS = {"ring": ring, "grid": grid}
POINT_DATASETS = tuple(_POINTS)  # 2-D points, not images
ON_DISK = ("mnist", "stacked_mnist", "cifar10", "celeba", "folder")  # read from data.root
_WITH_SPLITS = ("mnist", "stacked_mnist", "cifar10", "celeba")
CELEBA_SIZE = 64  # CelebA's default image size


def data_root(root: str | Path | None) -> Path:
    """``root`` if given, else ``$EQUILIBRIA_DATA``, else ``./data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("EQUILIBRIA_DATA") or "data")


def load_dataset(name: str, *, root: str | Path | None = None, split: str = "train",
                 image_size: int | None = None, num_samples: int | None = None,
                 seed: int = 0) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`).

    ``num_samples`` is the number of points drawn for ring/grid (default 100000), of
    stacked images for stacked_mnist (default: the size of the MNIST split) and, for
    the others, keeps the first ``num_samples``. ``image_size`` resizes images (the
    folder dataset requires it; CelebA's default is 64). ``seed`` drives the random datasets (ring, grid,
    stacked_mnist). Datasets without a test split (digits, ring, grid, folder)
    accept only split "train" or "all", both meaning everything.
    """
    if name not in DATASETS:
        raise ValueError(f"name: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    check_split(split)
    if split == "test" and name not in _WITH_SPLITS:
        raise ValueError(f"split: {name} has no test split; allowed for {name}: train, all")
    if num_samples is not None and num_samples < 1:
        raise ValueError(f"num_samples: must be >= 1, got {num_samples}")
    if name in _POINTS:
        if image_size is not None:
            raise ValueError(f"image_size: {name} is a 2-D points dataset, so image_size "
                             f"must be unset (null), got {image_size}")
        return _POINTS[name](num_samples or DEFAULT_NUM_POINTS, seed)
    root = data_root(root)
    if name == "stacked_mnist":
        mnist = load_mnist(root, split)
        dataset = stacked_mnist(mnist, num_samples or len(mnist), seed)
    elif name == "celeba":  # decoded straight to its size: the crop comes before the resize
        return _first(load_celeba(root, split, image_size or CELEBA_SIZE), num_samples)
    else:
        dataset = _load_plain(name, root, split, image_size)
        dataset = _first(dataset, num_samples)
    if image_size is not None:
        dataset = dataclasses.replace(dataset, data=resize_images(dataset.data, image_size))
    return dataset


def _load_plain(name: str, root: Path, split: str, image_size: int | None) -> Dataset:
    if name == "digits":
        return load_digits()
    if name == "mnist":
        return load_mnist(root, split)
    if name == "cifar10":
        return load_cifar10(root, split)
    if image_size is None:
        raise ValueError("image_size: required for the folder dataset (images are "
                         "centre-cropped to image_size x image_size), got null")
    return load_image_folder(root, image_size)


def _first(dataset: Dataset, num_samples: int | None) -> Dataset:
    """The first ``num_samples`` samples of ``dataset`` (all when None)."""
    if num_samples is None:
        return dataset
    if num_samples > len(dataset):
        raise ValueError(f"num_samples: {num_samples} exceeds the {len(dataset)} samples "
                         f"available in {dataset.name}; allowed: 1..{len(dataset)} or null for all")
    labels = None if dataset.labels is None else dataset.labels[:num_samples].clone()
    return dataclasses.replace(dataset, data=dataset.data[:num_samples].clone(), labels=labels)
