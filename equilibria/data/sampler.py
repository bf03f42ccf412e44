"""Reproducible, resumable minibatches from an in-memory dataset."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .dataset import Dataset


class BatchSampler:
    """Reproducible minibatches: shuffles without replacement each epoch with its own torch.Generator.

    Images stay uint8 on ``device`` and are mapped linearly from 0..255 to
    ``value_range`` per batch (``None`` keeps 0..255); points are returned as they are.
    The last partial batch of each epoch is dropped. ``part`` keeps this process's share of each
    (global) batch under data parallelism; the order is the same for any number of processes.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int,
                 value_range: tuple[float, float] | None = (-1.0, 1.0),
                 device: str | torch.device = "cpu",
                 part: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if not 1 <= batch_size <= len(dataset):
            raise ValueError(f"batch_size: must be between 1 and the dataset size "
                             f"({len(dataset)} samples in {dataset.name}), got {batch_size}")
        if dataset.kind == "image" and dataset.data.dtype != torch.uint8:
            raise ValueError(f"BatchSampler: image data of {dataset.name} must be uint8, got "
                             f"{dataset.data.dtype}")
        self.batch_size = batch_size
        self._part = part
        self.device = torch.device(device)
        self._data = dataset.data.to(self.device)
        self._affine = None  # (scale, shift as a 0-dim float32 tensor on device)
        if dataset.kind == "image":
            low, high = value_range if value_range is not None else (0.0, 255.0)
            shift = torch.tensor(float(low), dtype=torch.float32, device=self.device)
            self._affine = ((high - low) / 255.0, shift)
        self._generator = torch.Generator().manual_seed(seed)
        self._epoch = 0
        self._set_permutation(self._new_permutation())

    @property
    def epoch(self) -> int:
        """Number of completed passes over the data."""
        return self._epoch

    def next(self) -> torch.Tensor:
        """The next float32 batch on ``device``."""
        if self._position + self.batch_size > len(self._permutation):
            self._epoch += 1
            self._set_permutation(self._new_permutation())
        index = self._index[self._position:self._position + self.batch_size]
        self._position += self.batch_size
        if self._part is not None:
            index = self._part(index)
        batch = self._data.index_select(0, index)
        if self._affine is None:
            return batch
        scale, shift = self._affine
        return torch.add(shift, batch, alpha=scale)  # shift + scale * uint8 -> float32, one kernel

    def state_dict(self) -> dict:
        """Generator state, permutation, position and epoch (loadable with weights_only=True)."""
        return {"generator": self._generator.get_state(), "permutation": self._permutation.clone(),
                "position": self._position, "epoch": self._epoch}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` so the following batches are the same as after saving."""
        permutation = state["permutation"]
        if permutation.shape != (len(self._data),):
            raise ValueError(f"sampler state: saved for {permutation.numel()} samples, but this "
                             f"dataset has {len(self._data)}")
        self._generator.set_state(state["generator"])
        self._epoch = int(state["epoch"])
        self._set_permutation(permutation.long().cpu(), int(state["position"]))

    def _new_permutation(self) -> torch.Tensor:
        return torch.randperm(len(self._data), generator=self._generator)

    def _set_permutation(self, permutation: torch.Tensor, position: int = 0) -> None:
        self._permutation = permutation
        self._index = permutation.to(self.device)
        self._position = position
