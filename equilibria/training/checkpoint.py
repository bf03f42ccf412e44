"""Checkpoints: written atomically, loaded with ``weights_only=True``, the last N kept.

A checkpoint holds the trainer's state (networks, EMA, optimizers, components, data order, step)
and the random states of torch, numpy and python, so that a resumed run continues exactly.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from equilibria.files import write_atomically

_NAME = re.compile(r"^step-(\d+)\.pt$")


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


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save, atomically (a temporary file in the same directory, fsynced, then renamed)."""
    write_atomically(path, lambda handle: torch.save(obj, handle))


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (no arbitrary code: ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    return torch.load(path, map_location=map_location, weights_only=True)


def checkpoints(directory: str | Path) -> list[Path]:
    """The run's checkpoints, oldest step first."""
    directory = Path(directory)
    found = [(int(m.group(1)), p) for p in directory.glob("step-*.pt") if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest(run_dir: str | Path) -> Path:
    """The newest checkpoint of the run directory ``run_dir``."""
    found = checkpoints(Path(run_dir) / "checkpoints")
    if not found:
        raise FileNotFoundError(f"run directory {str(run_dir)!r} has no checkpoints")
    return found[-1]


def save(directory: str | Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``step-N.pt`` (with the random states) and delete all but the newest ``keep``."""
    path = Path(directory) / f"step-{step:08d}.pt"
    save_atomic({**state, "rng": rng_state()}, path)
    for old in checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path
