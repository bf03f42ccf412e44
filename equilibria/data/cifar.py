"""CIFAR-10 from the python pickle batches, read with a restricted unpickler."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from .dataset import Dataset, check_split

_FOLDER = "cifar-10-batches-py"
_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
# The only globals needed to rebuild numpy arrays (numpy 1.x and 2.x module names).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickler that can only build numpy arrays and plain containers."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}: only numpy "
                                         "arrays are allowed in CIFAR batches")
        return super().find_class(module, name)


def _load_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch file as ``(data uint8 (N, 3072), labels int64 (N,))``."""
    with open(path, "rb") as f:
        batch = _NumpyUnpickler(f, encoding="bytes").load()
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{path}: not a CIFAR-10 batch (expected a dict with b'data' and "
                         "b'labels')")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"], dtype=np.int64)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape != (len(labels), 3072):
        raise ValueError(f"{path}: expected uint8 data of shape ({len(labels)}, 3072), got "
                         f"{getattr(data, 'dtype', type(data).__name__)} "
                         f"{getattr(data, 'shape', '')}")
    return data, labels


def load_cifar10(root: str | Path, split: str = "train") -> Dataset:
    """CIFAR-10 ``split`` ("train", "test" or "all") as uint8 ``(N, 3, 32, 32)``.

    ``root`` may hold ``cifar-10-batches-py/`` or be that folder.
    """
    check_split(split)
    root = Path(root)
    splits = ("train", "test") if split == "all" else (split,)
    names = [name for s in splits for name in _BATCHES[s]]
    directory = next((d for d in (root / _FOLDER, root) if all((d / n).is_file() for n in names)),
                     None)
    if directory is None:
        searched = root / _FOLDER if (root / _FOLDER).is_dir() else root
        missing = [n for n in names if not (searched / n).is_file()]
        raise FileNotFoundError(
            f"CIFAR-10 {split} split not found in {searched}: missing {', '.join(missing)}; "
            "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it "
            f"into {root}")
    batches = [_load_batch(directory / n) for n in names]
    data = torch.from_numpy(np.concatenate([d for d, _ in batches])).view(-1, 3, 32, 32)
    labels = torch.from_numpy(np.concatenate([labels for _, labels in batches]))
    return Dataset("cifar10", data, labels, "image", num_modes=10)
