"""MNIST: the IDX file reader, the loader and the verified downloader."""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .dataset import Dataset, check_split
from .download import download_verified, file_digest

MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file (raw, or gzipped as detected from its magic bytes) into a tensor."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{path}: corrupt gzip data ({error})") from error
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'}; "
                         "expected 0000 then a type code and the number of dimensions)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        allowed = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}; allowed: {allowed}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header} "
                         f"for {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX payload is {len(raw) - header} bytes but dimensions "
                         f"{dims} of {dtype.name} need {expected}")
    array = np.frombuffer(raw, dtype, offset=header).reshape(dims)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def load_mnist(root: str | Path, split: str = "train") -> Dataset:
    """MNIST ``split`` ("train", "test" or "all") as uint8 ``(N, 1, 28, 28)``.

    The IDX files (raw or ``.gz``) are looked up in ``root`` and then ``root/mnist``.
    """
    check_split(split)
    directory = _mnist_dir(Path(root))
    splits = ("train", "test") if split == "all" else (split,)
    missing = [name for s in splits for name in _split_files(s) if _find(directory, name) is None]
    if missing:
        raise FileNotFoundError(_missing_message(directory, split, missing))
    images, labels = [], []
    for s in splits:
        image_file, label_file = (_find(directory, name) for name in _split_files(s))
        images.append(read_idx(image_file))
        labels.append(read_idx(label_file))
        if images[-1].dtype != torch.uint8 or images[-1].shape[1:] != (28, 28):
            raise ValueError(f"{image_file}: expected uint8 images of shape (N, 28, 28), got "
                             f"{images[-1].dtype} {tuple(images[-1].shape)}")
        if labels[-1].shape != images[-1].shape[:1]:
            raise ValueError(f"{label_file}: expected {len(images[-1])} labels to match "
                             f"{image_file.name}, got shape {tuple(labels[-1].shape)}")
    data = torch.cat(images).unsqueeze(1)
    return Dataset("mnist", data, torch.cat(labels).long(), "image", num_modes=10)


def download_mnist(root: str | Path, splits: Sequence[str] = ("train", "test"),
                   mirrors: Sequence[str] = MNIST_MIRRORS, timeout: float = 60,
                   progress: bool = True) -> list[Path]:
    """Download the gzipped MNIST ``splits`` into ``root``; returns the files' paths.

    Files already present with the right md5 are kept; others are fetched from the
    ``mirrors`` in order and moved into place only once their md5 matches.
    """
    for split in splits:
        if split not in _SPLIT_PREFIX:
            raise ValueError(f"splits: unknown split {split!r}; allowed: {', '.join(_SPLIT_PREFIX)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for split in splits:
        for name in _split_files(split):
            gz = f"{name}.gz"
            dest = root / gz
            if not (dest.is_file() and file_digest(dest) == MNIST_FILES[gz]):
                urls = [mirror.rstrip("/") + "/" + gz for mirror in mirrors]
                download_verified(urls, dest, MNIST_FILES[gz], timeout, progress)
            paths.append(dest)
    return paths


def _split_files(split: str) -> tuple[str, str]:
    prefix = _SPLIT_PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find(directory: Path, name: str) -> Path | None:
    """``directory/name`` or its ``.gz``, whichever exists (raw first)."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _mnist_dir(root: Path) -> Path:
    """``root`` unless it holds no MNIST file and ``root/mnist`` does."""
    names = [name for split in _SPLIT_PREFIX for name in _split_files(split)]
    nested = root / "mnist"
    if not any(_find(root, n) for n in names) and any(_find(nested, n) for n in names):
        return nested
    return root


def _missing_message(directory: Path, split: str, missing: list[str]) -> str:
    message = (f"MNIST {split} split not found in {directory}: missing "
               f"{', '.join(missing)} (raw or .gz); download it with "
               f"`equilibria data download mnist --root {directory}`")
    present = [s for s in _SPLIT_PREFIX
               if all(_find(directory, name) for name in _split_files(s))]
    if len(present) == 1:
        message += f"; found the {present[0]} split: set data.split={present[0]}"
    return message
