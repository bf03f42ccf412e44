"""A run's records: metrics as JSON lines, TensorBoard events, sample images."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from equilibria.images import make_grid, save_png, scatter_png


def scalars(logs: dict[str, Any]) -> dict[str, float]:
    """The loggable scalars of a step's logs as Python floats (tensors of one element included)."""
    out = {}
    for key, value in logs.items():
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


class RunLog:
    """Appends metrics to ``metrics.jsonl`` and, optionally, TensorBoard under ``tensorboard/``."""

    def __init__(self, run_dir: Path, tensorboard: bool, resume_step: int | None = None):
        self.path = run_dir / "metrics.jsonl"
        if resume_step is not None:
            self._truncate_after(resume_step)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imported only when used: it is slow

            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=resume_step)

    def _truncate_after(self, step: int) -> None:
        """Drop the records a crashed run wrote after its last checkpoint."""
        if self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if json.loads(line)["step"] <= step]
            self.path.write_text("".join(line + "\n" for line in kept))

    def metrics(self, step: int, seconds: float, values: dict[str, float]) -> None:
        record = {"step": step, "seconds": round(seconds, 3),
                  **{k: (v if math.isfinite(v) else str(v)) for k, v in values.items()}}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def samples(self, path: Path, step: int, fake: Tensor, real: Tensor | None, value_range, centers=None,
                tag: str = "samples") -> None:
        """Save a sample grid (images) or a scatter plot (2-D points) as PNG, and to TensorBoard."""
        fake = fake.detach().float().cpu()
        if fake.dim() == 2:
            scatter_png(path, fake, real, centers=centers, title=f"step {step}")
            return
        grid = make_grid(fake, nrow=int(math.ceil(math.sqrt(fake.shape[0]))), value_range=value_range)
        save_png(path, grid)
        if self.writer is not None:
            self.writer.add_image(tag, torch.from_numpy(grid if grid.ndim == 3 else grid[..., None]), step,
                                  dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
