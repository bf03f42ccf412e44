"""A dataset's reference features and statistics, cached on disk as npz files.

An entry is keyed by the sha256 of: the dataset's name, split and size, the hash of the data
bytes used, the extractor's name (which names its network, weights and preprocessing) and the
preprocessing applied before the extractor. It holds the features (float32), their mean and
covariance (float64) and their count, in ``<cache>/references/`` (``<cache>``:
``$EQUILIBRIA_CACHE`` or ``~/.cache/equilibria``). Files are written to a temporary file,
fsynced and renamed, and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from equilibria.files import write_atomically
from equilibria.metrics.frechet import Statistics, feature_statistics
from equilibria.files import cache_dir as default_cache_dir


@dataclass(frozen=True)
class Reference:
    """A reference set's features (N, D) and their statistics."""

    features: np.ndarray
    statistics: Statistics


def data_hash(data: Tensor) -> str:
    """sha256 of a tensor's shape, dtype and bytes."""
    digest = hashlib.sha256(f"{tuple(data.shape)}:{data.dtype};".encode())
    digest.update(data.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def reference_key(*, dataset: str, split: str | None, size: int, data: str, extractor: str,
                  preprocessing: str) -> str:
    """sha256 of the fields that determine a reference entry (``data`` is :func:`data_hash`'s)."""
    fields = {"dataset": dataset, "split": split, "size": size, "data": data, "extractor": extractor,
              "preprocessing": preprocessing}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def reference_path(dataset: str, key: str, cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / "references" / f"{dataset}-{key[:16]}.npz"


def save_reference(path: Path, reference: Reference) -> None:
    """Write atomically: a temporary file in the same directory, fsynced, then renamed."""
    write_atomically(path, lambda handle: np.savez(
        handle, features=reference.features, mu=reference.statistics.mu, sigma=reference.statistics.sigma,
        count=np.int64(reference.statistics.count)))


def load_reference(path: Path) -> Reference:
    with np.load(path, allow_pickle=False) as entry:
        return Reference(entry["features"], Statistics(entry["mu"], entry["sigma"], int(entry["count"])))


def cached_reference(path: Path, compute: Callable[[], Tensor | np.ndarray]) -> Reference:
    """The entry at ``path``, or ``compute()``'s features (N, D) with their statistics, saved there."""
    if path.is_file():
        return load_reference(path)
    features = compute()
    features = np.asarray(features.detach().cpu() if isinstance(features, Tensor) else features, dtype=np.float32)
    reference = Reference(features, feature_statistics(features))
    save_reference(path, reference)
    return reference
