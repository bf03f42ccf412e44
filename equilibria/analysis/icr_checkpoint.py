"""Is a checkpoint stabilised by implicit competitive regularisation? (ICR Section 3, Figure 4.)

From a checkpoint, train the discriminator alone (the generator frozen) or jointly with the
generator, with the same optimizers, data and noise, and record how its loss and its outputs on
fixed sets of real and generated images move away from the checkpoint's (Appendix A.3.1, Eq. 5).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from equilibria.metrics.diagnostics import output_drift
from equilibria.core.trainer import Trainer


@torch.no_grad()
def _measure(trainer: Trainer, start, real: Tensor, fake: Tensor) -> dict[str, float]:
    """The discriminator's loss on the fixed sets and its drift from ``start``, in eval mode."""
    was_training = trainer.discriminator.training
    trainer.discriminator.eval()
    try:
        drift = output_drift(trainer.discriminator, start, real, fake)
        loss = trainer.objective.adversary_loss(trainer.discriminator(real), trainer.discriminator(fake))
    finally:
        trainer.discriminator.train(was_training)
    return {"loss": loss.item(), "d_real": drift.real, "d_fake": drift.fake, "weights": drift.weights}


def train_from_checkpoint(trainer: Trainer, state: dict[str, Any], *, steps: int, every: int, real: Tensor,
                          fake: Tensor, freeze_generator: bool, seed: int = 0) -> list[dict[str, float]]:
    """Restore ``state`` (a ``Trainer.state_dict()``), train ``steps`` iterations and measure every ``every``.

    ``freeze_generator`` trains the discriminator alone: the generator's learning rate is 0 for the
    run (its update rule and its batches are otherwise unchanged, so both modes see the same data and
    noise). Each row: ``step``; ``loss`` (the discriminator's objective on the fixed sets ``real`` and
    ``fake``); ``train_loss`` (the mean discriminator loss on the training batches since the last
    row); ``d_real``, ``d_fake`` (Eq. 5: the distance between the outputs of the discriminator and of
    the checkpoint's on the fixed sets); ``weights`` (the distance between their parameters).
    """
    if steps < 1 or every < 1:
        raise ValueError(f"steps and every: got {steps} and {every}; allowed: integers >= 1")
    if trainer.g_optimizer is None:
        raise ValueError("train.update: the checkpoint experiment needs an optimizer per player "
                         "(alternating or simultaneous updates), not a joint optimizer")
    trainer.load_state_dict(state)
    start = copy.deepcopy(trainer.discriminator).eval()
    generator_lrs = [group["lr"] for group in trainer.g_optimizer.param_groups]
    if freeze_generator:
        for group in trainer.g_optimizer.param_groups:
            group["lr"] = 0.0
    torch.manual_seed(seed)

    def row(step: int, train_loss: float) -> dict[str, float]:
        return {"step": step, "train_loss": train_loss, **_measure(trainer, start, real, fake)}

    rows = [row(0, float("nan"))]
    try:
        losses = []
        for step in range(1, steps + 1):
            losses.append(float(trainer.train_step()["loss_adv"]))
            if step % every == 0 or step == steps:
                rows.append(row(step, sum(losses) / len(losses)))
                losses = []
    finally:
        for group, lr in zip(trainer.g_optimizer.param_groups, generator_lrs):
            group["lr"] = lr
    return rows
