"""What a method is to the library: a config section, the objectives it owns, and one builder.

A method (AdvAs, CGD, the lens, VRAL, R3GAN, or one of your own) is one module that defines a
``Method``. The job layer reads the method's section from the run's config (``<name>: {enabled:
true, ...}``), checks it, and, when it is enabled, calls ``build(section, context)``, which returns
what the method contributes to the trainer: components (hooks into the iteration), penalty terms
of L_adv, the objective, or a joint optimizer. Nothing in the core, the config module or the
build step names a method.

``implies`` lists config keys an enabled method sets (``{"train.update": "joint"}`` for CGD): the
key takes that value unless the config sets it otherwise, which is an error. ``objectives`` maps
the objective names the method owns to their builders (VRAL's ``vral``): ``objective: vral`` is
allowed only with the method enabled, and the method's ``check`` decides what else it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from equilibria.core.components import Component
from equilibria.core.objectives import Objective
from equilibria.core.parallel import SINGLE, DataParallel
from equilibria.core.penalties import Penalty
from equilibria.core.sections import MethodConfig
from equilibria.core.trainer import JointOptimizer


@dataclass(frozen=True)
class BuildContext:
    """What a method's builder may use: the networks (on their device), the run's objective, the
    shapes the run trains on (``batch_size``: the global batch) and the data-parallel processes."""

    generator: nn.Module
    discriminator: nn.Module
    objective: Objective
    sample_shape: tuple[int, ...]
    batch_size: int
    device: torch.device
    num_images: int  # images in a sample grid (log.num_samples)
    parallel: DataParallel = SINGLE  # this process among the data-parallel ones


@dataclass
class Contribution:
    """What an enabled method adds to the trainer."""

    components: Sequence[Component] = ()
    penalties: Sequence[Penalty] = ()
    joint_optimizer: JointOptimizer | None = None


@dataclass(frozen=True)
class Method:
    """A registered method: its config section ``name`` of type ``config``, and how it builds.

    ``check(section, config, objective)`` raises ``ConfigError`` for settings of the whole config
    (``objective``: the run's, resolved) that the method cannot train with; it runs whether or not
    the method is enabled, so that it can refuse its own objectives without it. ``build(section,
    context)`` is called only when the method is enabled.
    """

    name: str
    config: type[MethodConfig]
    build: Callable[[Any, BuildContext], Contribution]
    check: Callable[[Any, Any, Objective], None] = lambda section, config, objective: None
    implies: Mapping[str, Any] = field(default_factory=dict)
    objectives: Mapping[str, Callable[[Any], Objective]] = field(default_factory=dict)
