"""Exponential moving average of a network's weights (the usual EMA generator)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``average = decay * average + (1 - decay) * weights`` after every update; buffers are copied."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay: got {decay}; allowed: 0 < decay < 1")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self._params = list(self.model.parameters())
        self._buffers = list(self.model.buffers())

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        torch._foreach_lerp_(self._params, list(model.parameters()), 1.0 - self.decay)
        for average, buffer in zip(self._buffers, model.buffers()):
            average.copy_(buffer)

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
