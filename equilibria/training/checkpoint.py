"""The run's checkpoint: one schema, written and read here alone.

A checkpoint ``checkpoints/step-N.pt`` is one dict::

    {"format": 1, "step": N, "seconds": training time so far, "sample_shape": [...],
     "trainer": Trainer.state_dict() (networks, EMA, optimizers, components, data order, step),
     "rng": the torch, CUDA, numpy and python random states}

written atomically (``equilibria.files``), loaded with ``weights_only=True``; the last N are kept.
A resumed run continues exactly.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from equilibria.core.trainer import Trainer
from equilibria.files import save_atomically

FORMAT = 1
_NAME = re.compile(r"^step-(\d+)\.pt$")


@dataclass(frozen=True)
class RunState:
    """A checkpoint's contents."""

    step: int
    seconds: float
    sample_shape: tuple[int, ...]
    trainer: dict[str, Any]
    rng: dict[str, Any]

    def generator_weights(self, use_ema: bool = True) -> dict[str, Any]:
        """The generator's weights: its EMA if the run kept one and ``use_ema``."""
        return self.trainer["ema"] if use_ema and "ema" in self.trainer else self.trainer["generator"]

    @property
    def has_ema(self) -> bool:
        return "ema" in self.trainer


def rng_state() -> dict[str, Any]:
    """The global random states as tensors and plain values (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


def step_of(path: str | Path) -> int:
    """N of ``step-N.pt``."""
    match = _NAME.match(Path(path).name)
    if match is None:
        raise ValueError(f"checkpoint {str(path)!r}: allowed names are step-N.pt")
    return int(match.group(1))


def checkpoints(directory: str | Path) -> list[Path]:
    """The checkpoints in ``directory``, oldest step first."""
    found = [p for p in Path(directory).glob("step-*.pt") if _NAME.match(p.name)]
    return sorted(found, key=step_of)


def latest(run_dir: str | Path) -> Path:
    """The newest checkpoint of the run directory ``run_dir``."""
    found = checkpoints(Path(run_dir) / "checkpoints")
    if not found:
        raise FileNotFoundError(f"run directory {str(run_dir)!r} has no checkpoints")
    return found[-1]


def save(directory: str | Path, trainer: Trainer, *, seconds: float, sample_shape: tuple[int, ...],
         keep: int) -> Path:
    """Write ``step-N.pt`` for the trainer's step and delete all but the newest ``keep``."""
    path = Path(directory) / f"step-{trainer.step:08d}.pt"
    save_atomically({"format": FORMAT, "step": trainer.step, "seconds": seconds, "sample_shape": list(sample_shape),
                     "trainer": trainer.state_dict(), "rng": rng_state()}, path)
    for old in checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu") -> RunState:
    """Read a checkpoint safely (no arbitrary code: ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    state = torch.load(path, map_location=map_location, weights_only=True)
    missing = [key for key in ("step", "seconds", "sample_shape", "trainer", "rng")
               if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} is not a run checkpoint (it lacks {', '.join(missing)})")
    return RunState(step=int(state["step"]), seconds=float(state["seconds"]),
                    sample_shape=tuple(state["sample_shape"]), trainer=state["trainer"], rng=state["rng"])
