"""The standard optimizers by name (Adam, RMSprop, SGD): their config section and their builder."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

import torch
from pydantic import Field

from equilibria.core.sections import Float, Section, option

Beta = Annotated[Float, Field(ge=0.0, lt=1.0)]


class OptimizerConfig(Section):
    name: Literal["adam", "rmsprop", "sgd"] = option("adam", "the optimizer")
    lr: Float = option(2e-4, "learning rate", gt=0.0)
    betas: tuple[Beta, Beta] = option((0.5, 0.999), "Adam's betas, each in [0, 1)")
    eps: Float = option(1e-8, "Adam's and RMSprop's epsilon", gt=0.0)
    alpha: Float = option(0.99, "RMSprop's smoothing constant", ge=0.0, le=1.0)
    momentum: Float = option(0.0, "SGD's and RMSprop's momentum", ge=0.0, le=1.0)
    weight_decay: Float = option(0.0, "L2 weight decay of the optimizer", ge=0.0)
    decay: Literal["constant", "linear"] = option("constant", "learning rate over train.steps: constant, or linear "
                                                 "from lr to 0 (AutoGAN's)")


def build_optimizer(parameters: Iterable[torch.Tensor], config: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, over ``parameters``."""
    if config.name == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, betas=config.betas, eps=config.eps,
                                weight_decay=config.weight_decay)
    if config.name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr, alpha=config.alpha, eps=config.eps,
                                   momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def scheduled_lr(config: OptimizerConfig, step: int, steps: int) -> float:
    """The learning rate of iteration ``step`` (0-based) of ``steps``: ``config.lr``, or with ``decay:
    linear`` lr * (1 - step / steps), as AutoGAN's ``LinearLrDecay`` (from lr at the first step to 0)."""
    return config.lr if config.decay == "constant" else config.lr * max(0.0, 1.0 - step / steps)
