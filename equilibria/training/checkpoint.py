"""The run's checkpoint: one schema, written and read here alone.

A checkpoint ``checkpoints/step-N.pt`` is one dict::

    {"format": 1, "step": N, "seconds": training time so far, "sample_shape": [...],
     "trainer": Trainer.state_dict() (networks, EMA, optimizers, components, data order, step),
     "rng": the torch, CUDA, numpy and python random states}

written atomically (``equilibria.files``), loaded with ``weights_only=True``; the last N are kept.
A resumed run continues exactly.
"""

from __future__ import annotations

import pickle
import random
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from equilibria.core.trainer import Trainer
from equilibria.files import save_atomically

FORMAT = 1
_NAME = re.compile(r"^step-(\d+)\.pt$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not fit the run loading it."""


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
    """Read a checkpoint safely (no arbitrary code: ``weights_only=True``); errors in our words."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if zipfile.is_zipfile(path) and ("weights_only" in str(error) or "Weights only" in str(error)):
            raise CheckpointError(f"checkpoint {str(path)!r} holds Python objects that only running their code "
                                  "could rebuild; refused (checkpoints are loaded with weights_only=True, and "
                                  "equilibria never writes such objects)") from None
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged ({_first_line(error)})") from None
    except Exception as error:  # noqa: BLE001 - random bytes make the unpickler raise anything (IndexError, ...)
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged ({type(error).__name__}: "
                              f"{_first_line(error) or 'empty file'})") from None
    missing = [key for key in ("step", "seconds", "sample_shape", "trainer", "rng")
               if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a run checkpoint (it lacks {', '.join(missing)})")
    return RunState(step=int(state["step"]), seconds=float(state["seconds"]),
                    sample_shape=tuple(state["sample_shape"]), trainer=state["trainer"], rng=state["rng"])


def _first_line(error: BaseException) -> str:
    return str(error).strip().split("\n")[0][:200]


def load_latest(directory: str | Path, map_location: str | torch.device = "cpu"
                ) -> tuple[RunState, Path, list[str]]:
    """The newest readable checkpoint in ``directory``, its path, and why each newer one was skipped."""
    skipped = []
    for path in reversed(checkpoints(directory)):
        try:
            return load(path, map_location), path, skipped
        except CheckpointError as error:
            skipped.append(str(error))
    reasons = "; ".join(skipped)
    raise FileNotFoundError(f"{str(directory)!r} has no readable checkpoint" + (f" ({reasons})" if reasons else ""))


def difference(checkpoint: Any, here: Any, where: str) -> str | None:
    """The first way the tensors of ``checkpoint`` (nested dicts) do not fit ``here``, in one line."""
    if isinstance(here, torch.Tensor):
        if not isinstance(checkpoint, torch.Tensor):
            return f"{where} is not a tensor in the checkpoint"
        if checkpoint.shape != here.shape:
            return (f"{where} has shape {tuple(checkpoint.shape)} in the checkpoint and {tuple(here.shape)} "
                    "in this run")
        return None
    if isinstance(here, dict):
        if not isinstance(checkpoint, dict):
            return f"{where} is missing from the checkpoint"
        if set(checkpoint) != set(here):
            extra, missing = sorted(set(checkpoint) - set(here)), sorted(set(here) - set(checkpoint))
            parts = ([f"the checkpoint has {', '.join(map(str, extra))}"] if extra else []) + \
                    ([f"this run has {', '.join(map(str, missing))}"] if missing else [])
            return f"{where}: {' and '.join(parts)} that the other lacks"
        for key, value in here.items():
            found = difference(checkpoint[key], value, f"{where}.{key}")
            if found:
                return found
    return None


def restore(trainer: Trainer, state: RunState, path: str | Path) -> None:
    """Load ``state`` into ``trainer``; a checkpoint of another architecture, width or set of methods is
    refused in one line naming what differs."""
    here = trainer.state_dict()
    networks = {"generator": here["generator"], "discriminator": here["discriminator"]}
    found = difference({k: state.trainer.get(k) for k in networks}, networks, "")
    components = state.trainer.get("components", {})
    if found is None and set(components) != set(here["components"]):
        found = (f"methods: the checkpoint has {', '.join(sorted(components)) or 'none'}, this run "
                 f"{', '.join(sorted(here['components'])) or 'none'}")
    for component in trainer.components:
        for name, module in component.modules().items():
            found = found or difference(components[component.name].get(name), module.state_dict(),
                                        f"{component.name}.{name}")
    if found:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit this run: {found.lstrip('.')}")
    for part in ("g_optimizer", "d_optimizer", "joint_optimizer", "ema"):
        if (part in here) != (part in state.trainer):
            which = "this run" if part in here else "the checkpoint"
            raise CheckpointError(f"checkpoint {str(path)!r} does not fit this run: only {which} has a {part}")
    try:
        trainer.load_state_dict(state.trainer)
    except (RuntimeError, KeyError, ValueError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit this run: {_first_line(error)}") from None
