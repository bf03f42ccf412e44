"""Human-readable dataset summary for ``equilibria data info``."""

from __future__ import annotations

import torch

from .dataset import Dataset

_MAX_LISTED_LABELS = 20


def describe(dataset: Dataset) -> str:
    """Name, size, shape, dtype, value range, modes and a label histogram summary."""
    data = dataset.data
    lines = [
        f"name:         {dataset.name} ({dataset.kind})",
        f"samples:      {len(dataset)}",
        f"sample shape: {dataset.sample_shape} {str(data.dtype).removeprefix('torch.')}",
        f"value range:  [{_fmt(data.min())}, {_fmt(data.max())}]",
        f"modes:        {dataset.num_modes if dataset.num_modes is not None else 'unknown'}",
    ]
    if dataset.std is not None:
        lines.append(f"mode std:     {dataset.std:g}")
    lines.append(f"labels:       {_label_summary(dataset.labels)}")
    return "\n".join(lines)


def _fmt(value: torch.Tensor) -> str:
    return f"{value.item():.4g}" if value.is_floating_point() else str(value.item())


def _label_summary(labels: torch.Tensor | None) -> str:
    if labels is None:
        return "none"
    values, counts = labels.unique(return_counts=True)
    if len(values) <= _MAX_LISTED_LABELS:
        return f"{len(values)} distinct; " + ", ".join(
            f"{v}: {c}" for v, c in zip(values.tolist(), counts.tolist()))
    median = counts.median().item()
    return (f"{len(values)} distinct; count per label min {counts.min().item()}, "
            f"median {median}, max {counts.max().item()}")
