"""The extension points of the trainer: a method plugs in as a ``Component``.

A component overrides only the hooks it needs; the trainer calls every hook of every component
at a fixed place in each iteration:

- ``transform_real``: the real batch before the adversary sees it (the lens); with autograd on only
  for the iteration's last batch, the one ``after_iteration`` receives.
- ``update_before_adversary``: update the component's own networks from the adversary's batch and
  its detached outputs, before the adversary's update (meta-discriminators).
- ``adversary_terms``: extra terms of L_adv, differentiable in both players (meta-discriminators).
- ``adjust_generator_gradient``: change the generator's gradient, already in ``.grad``, before its
  optimizer steps (AdvAs).
- ``after_iteration``: anything once per iteration, after both players moved (the lens's update).
- ``sample_images``: extra image grids for the run's sample files (the lens's view of real data).

Hooks return a dict of scalars to log. ``modules``, ``state_dict`` and ``load_state_dict`` let
checkpoints hold the component's networks, optimizers and counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

if TYPE_CHECKING:
    from equilibria.core.trainer import Trainer

Logs = dict[str, Any]


@dataclass
class GeneratorStep:
    """What a generator update saw: latent codes, samples (with graph), the real batch, its loss.

    A component that makes the generator's gradient global itself (averaged over the data-parallel
    processes, as AdvAs must before its lambda) sets ``gradient_is_global``, and the trainer does not
    average it again."""

    z: Tensor
    fake: Tensor
    real: Tensor
    loss: Tensor
    gradient_is_global: bool = False


class Component:
    """Base class of trainer components; every hook defaults to doing nothing."""

    name = "component"

    def transform_real(self, real: Tensor) -> Tensor:
        return real

    def update_before_adversary(self, trainer: Trainer, real: Tensor, fake: Tensor, d_real: Tensor,
                                d_fake: Tensor) -> Logs:
        return {}

    def adversary_terms(self, trainer: Trainer, real: Tensor, fake: Tensor, d_real: Tensor,
                        d_fake: Tensor) -> dict[str, Tensor]:
        return {}

    def adjust_generator_gradient(self, trainer: Trainer, step: GeneratorStep) -> Logs:
        return {}

    def after_iteration(self, trainer: Trainer, real: Tensor) -> Logs:
        return {}

    def sample_images(self, trainer: Trainer) -> dict[str, Tensor]:
        return {}

    def modules(self) -> dict[str, nn.Module]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {name: module.state_dict() for name, module in self.modules().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state[name])
