"""Non-finite detection that costs no device synchronisation per step.

Each iteration, ``FiniteMonitor.record`` stacks the iteration's scalars (losses, gradient norms
before each optimizer step, every method's logged quantities: the lens's loss, the
meta-discriminators' losses, AdvAs's r and lambda, the conjugate-gradient residual) into one tensor
on the device; nothing is read. ``check`` reads all the pending records at once (one
synchronisation) and raises ``NonFiniteError`` naming the first step, quantity and player that went
non-finite. The run loop calls it at logging steps, before every checkpoint and at the end, so no
checkpoint holds a non-finite state and a run never trains through NaN for more than ``log.every``
steps unnoticed.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

# Quantities of the trainer itself, by player; a method's quantities are named "<method>/<name>".
_ADVERSARY = ("loss_adv", "grad_norm_adv", "d_real", "d_fake", "d_real_std", "d_fake_std")
_GENERATOR = ("loss_gen", "grad_norm_gen", "grad_norm_fake")


def player_of(quantity: str) -> str:
    """Whose quantity it is: the adversary, the generator, or the method that logs it."""
    if quantity.endswith(" parameters"):
        return quantity.removesuffix(" parameters").split("/")[0]
    if quantity in _ADVERSARY or quantity.startswith("adv/"):
        return "adversary"
    if quantity in _GENERATOR:
        return "generator"
    return quantity.split("/")[0] if "/" in quantity else "trainer"


class NonFiniteError(FloatingPointError):
    """A quantity of the run became NaN or infinite."""

    def __init__(self, step: int, quantity: str, value: float, note: str = ""):
        self.step, self.quantity, self.value = step, quantity, value
        super().__init__(f"non-finite {quantity} ({value}) of the {player_of(quantity)} at step {step}"
                         + (f": {note}" if note else ""))


class FiniteMonitor:
    """Records whether the iterations' scalars are finite without reading them; ``check`` reads."""

    def __init__(self) -> None:
        self._pending: list[tuple[int, tuple[str, ...], Tensor]] = []

    def record(self, step: int, values: dict[str, Any]) -> None:
        """Keep ``values`` (scalar tensors or numbers) of iteration ``step``; floats are checked now."""
        tensors = {}
        for name, value in values.items():
            if isinstance(value, Tensor) and value.numel() == 1:
                tensors[name] = value.detach().reshape(()).float()
            elif isinstance(value, float) and not math.isfinite(value):
                raise NonFiniteError(step, name, value)
        if tensors:
            self._pending.append((step, tuple(tensors), torch.stack(list(tensors.values()))))

    def check(self) -> None:
        """Raise ``NonFiniteError`` for the first non-finite quantity recorded since the last check."""
        pending, self._pending = self._pending, []
        if not pending or bool(torch.isfinite(torch.cat([values for _, _, values in pending])).all()):
            return
        for step, names, values in pending:
            bad = (~torch.isfinite(values)).nonzero()
            if len(bad):
                i = int(bad[0])
                raise NonFiniteError(step, names[i], float(values[i]))
