"""A run's records: metrics as JSON lines, TensorBoard events, sample images."""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import Tensor
from tqdm import tqdm

from equilibria.files import write_atomically
from equilibria.images import enlarge, make_grid, save_png, scatter_png


class LineProgress:
    """A run's progress as one line at each logging step, for output that is not a terminal (a log
    file, a batch job): ``train: step 1500/30000 (5%), 246 it/s, elapsed 0:06, left 1:56, loss_adv ...``.
    The rate counts the steps of this process (a resumed run's earlier steps are not in it)."""

    def __init__(self, total: int, initial: int, stream: TextIO):
        self.total, self.step, self.first, self.stream = total, initial, initial, stream
        self.started = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.step += n

    def set_postfix(self, values: dict[str, str]) -> None:
        seconds = time.perf_counter() - self.started
        rate = (self.step - self.first) / seconds if seconds > 0 else 0.0
        left = (self.total - self.step) / rate if rate > 0 else float("nan")
        losses = "".join(f", {key} {value}" for key, value in values.items())
        print(f"train: step {self.step}/{self.total} ({100 * self.step / self.total:.0f}%), {rate:.3g} it/s, "
              f"elapsed {_clock(seconds)}, left {_clock(left)}{losses}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


def progress(total: int, initial: int, enabled: bool, stream: TextIO | None = None) -> tqdm | LineProgress:
    """A tqdm bar on a terminal, ``LineProgress`` lines elsewhere (no carriage returns in a log file),
    nothing when not ``enabled``."""
    stream = stream or sys.stderr
    if enabled and not stream.isatty():
        return LineProgress(total, initial, stream)
    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", unit="it", dynamic_ncols=True,
                file=stream)


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

    def __init__(self, run_dir: Path, tensorboard: bool, resume_step: int | None = None, enabled: bool = True):
        """``enabled`` False (a data-parallel process other than the first) writes nothing."""
        self.path, self.enabled, self.writer = run_dir / "metrics.jsonl", enabled, None
        if not enabled:
            return
        self._truncate_after(resume_step or 0)  # a new run drops what a killed first attempt wrote
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imported only when used: it is slow

            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=resume_step)

    def _truncate_after(self, step: int) -> None:
        """Drop the records a crashed run wrote after its last checkpoint, and a torn last line (a write
        cut short by a kill or a full disk) with a warning naming the file."""
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines()
        kept = []
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number < len(lines):
                    raise ValueError(f"{self.path}, line {number}: not a JSON record ({line[:60]!r}); only a torn "
                                     "last line is dropped on resume") from None
                warnings.warn(f"{self.path}: dropped its torn last line ({line[:60]!r})", stacklevel=3)
                continue
            if record["step"] <= step:
                kept.append(line)
        write_atomically(self.path, lambda handle: handle.write("".join(line + "\n" for line in kept).encode()))

    def metrics(self, step: int, seconds: float, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "seconds": round(seconds, 3),
                  **{k: (v if math.isfinite(v) else str(v)) for k, v in values.items()}}
        try:
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError as error:
            raise OSError(error.errno, f"could not write {self.path}: {error.strerror}") from error
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def samples(self, path: Path, step: int, fake: Tensor, real: Tensor | None, value_range, centers=None,
                tag: str = "samples") -> None:
        """Save a sample grid (images) or a scatter plot (2-D points) as PNG, and to TensorBoard."""
        if not self.enabled:
            return
        fake = fake.detach().float().cpu()
        if fake.dim() == 2:
            scatter_png(path, fake, real, centers=centers, title=f"step {step}")
            return
        grid = make_grid(fake, nrow=int(math.ceil(math.sqrt(fake.shape[0]))), value_range=value_range)
        save_png(path, enlarge(grid))
        if self.writer is not None:
            self.writer.add_image(tag, torch.from_numpy(grid if grid.ndim == 3 else grid[..., None]), step,
                                  dataformats="HWC")

    def flush(self) -> None:
        """Make the TensorBoard events written so far durable (at every checkpoint)."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
