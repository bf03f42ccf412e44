"""The in-memory dataset type shared by every loader."""

from __future__ import annotations

from dataclasses import dataclass

import torch

SPLITS = ("train", "test", "all")


@dataclass
class Dataset:
    """A whole dataset held in memory.

    ``data`` is uint8 ``(N, C, H, W)`` for images and float32 ``(N, 2)`` for points;
    ``labels`` (int64 ``(N,)``) is the digit class, the stacked-MNIST mode or the
    mixture component.
    """

    name: str
    data: torch.Tensor
    labels: torch.Tensor | None
    kind: str
    centers: torch.Tensor | None = None
    std: float | None = None
    num_modes: int | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. ``(1, 28, 28)`` or ``(2,)``."""
        return tuple(self.data.shape[1:])

    def __len__(self) -> int:
        return self.data.shape[0]


def check_split(split: str) -> None:
    """Raise a ValueError unless ``split`` is one of :data:`SPLITS`."""
    if split not in SPLITS:
        raise ValueError(f"split: unknown split {split!r}; allowed: {', '.join(SPLITS)}")
