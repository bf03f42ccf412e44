"""The generator strikes back (ICR Section 4, Figure 8).

From the Figure 4 checkpoint, the discriminator is over-trained against the frozen checkpoint
generator, then the generator alone is trained against each fixed discriminator and the
discriminator's loss recorded: it rises fast against the over-trained discriminator and slowly
against the checkpoint's, and (Figure 8's second claim) slower still against a discriminator
over-trained with CGD, whose moves anticipate the generator's answer.

Over-training with CGD, as read here: each iteration computes the CGD step of both players on the
game f = -L_adv (ICR Section 5's local game, the run's learning rate for both), applies the
discriminator's move and discards the generator's, so the generator stays the checkpoint's (its
parameters and buffers are restored after every step). Over-training with the run's own optimizer
is ``icr_checkpoint.train_from_checkpoint(..., freeze_generator=True)``; with a new optimizer (Adam,
against ACGD for the competitive reading) ``overtrain_alone``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from equilibria.core.objectives import untruncated
from equilibria.core.trainer import Trainer
from equilibria.optim import ACGD, CGD


def overtrain_alone(trainer: Trainer, state: dict[str, Any], *, steps: int, optimizer: Callable[..., Optimizer],
                    seed: int = 0) -> dict[str, Tensor]:
    """Restore ``state`` and train the discriminator alone ``steps`` iterations with a new
    ``optimizer(parameters)`` (e.g. Adam) on its loss against the checkpoint generator; returns its
    state dict. The same real batches and noise as ``overtrain_with_cgd`` with the same ``seed``."""
    if steps < 1:
        raise ValueError(f"steps: got {steps}; allowed: an integer >= 1")
    trainer.load_state_dict(state)
    generator_state = copy.deepcopy(trainer.generator.state_dict())
    moves = optimizer(trainer.discriminator.parameters())
    torch.manual_seed(seed)
    for _ in range(steps):
        _, real = trainer.real_batch()
        with torch.no_grad():
            fake = trainer.generator(trainer.noise(real.shape[0]))
        loss_adv, _ = trainer.adversary_loss(real, fake)
        moves.zero_grad(set_to_none=True)
        loss_adv.backward()
        moves.step()
    trainer.generator.load_state_dict(generator_state)  # its BatchNorm statistics moved in train mode
    return copy.deepcopy(trainer.discriminator.state_dict())


def overtrain_with_cgd(trainer: Trainer, state: dict[str, Any], *, steps: int, lr: float, seed: int = 0,
                       adaptive: bool = False, max_iter: int | None = None) -> dict[str, Tensor]:
    """Restore ``state`` and take ``steps`` CGD steps (step size ``lr``; ``adaptive``: ACGD with
    alpha ``lr``, beta 0.999 as Adam's second moment) of which only the discriminator's move is kept;
    returns the discriminator's state dict (the trainer keeps it, and the checkpoint's generator).
    The same real batches and noise as ``train_from_checkpoint`` with the same ``seed``."""
    if steps < 1:
        raise ValueError(f"steps: got {steps}; allowed: an integer >= 1")
    if trainer.objective.value is None:
        raise ValueError(f"objective {trainer.objective.name!r} has no zero-sum value game, which CGD plays")
    trainer.load_state_dict(state)
    generator_state = copy.deepcopy(trainer.generator.state_dict())
    players = dict(min_params=trainer.generator.parameters(), max_params=trainer.discriminator.parameters(), lr=lr,
                   max_iter=max_iter)
    optimizer = ACGD(beta=0.999, **players) if adaptive else CGD(**players)
    objective = untruncated(trainer.objective)
    torch.manual_seed(seed)
    for _ in range(steps):
        _, real = trainer.real_batch()
        fake = trainer.generator(trainer.noise(real.shape[0]))
        loss_adv, _ = trainer.adversary_loss(real, fake, objective=objective)
        optimizer.step(-loss_adv)  # the generator minimises -L_adv, the discriminator maximises it
        trainer.generator.load_state_dict(generator_state)
    return copy.deepcopy(trainer.discriminator.state_dict())


@torch.no_grad()
def _probe_loss(trainer: Trainer, real: Tensor, noise: Tensor) -> float:
    """The discriminator's loss on the fixed real set and on the current generator's images of ``noise``
    (both players in eval mode)."""
    modes = trainer.generator.training, trainer.discriminator.training
    trainer.generator.eval()
    trainer.discriminator.eval()
    try:
        fake = trainer.generator(noise)
        return trainer.objective.adversary_loss(trainer.discriminator(real), trainer.discriminator(fake)).item()
    finally:
        trainer.generator.train(modes[0])
        trainer.discriminator.train(modes[1])


def counterattack(trainer: Trainer, state: dict[str, Any], discriminator: dict[str, Tensor], *, steps: int,
                  every: int, real: Tensor, noise: Tensor, seed: int = 0) -> list[dict[str, float]]:
    """Restore ``state`` (the checkpoint), put ``discriminator`` in and train the generator alone against
    it for ``steps`` iterations with the run's generator optimizer; every ``every`` iterations, the
    discriminator's loss on ``real`` and on the generator's images of ``noise``.

    Rows: ``step`` and ``loss``. The discriminator does not move (its parameters take no gradient).
    """
    if steps < 1 or every < 1:
        raise ValueError(f"steps and every: got {steps} and {every}; allowed: integers >= 1")
    if trainer.g_optimizer is None:
        raise ValueError("train.update: the counterattack needs the generator's own optimizer "
                         "(alternating or simultaneous updates), not a joint optimizer")
    trainer.load_state_dict(state)
    trainer.discriminator.load_state_dict(discriminator)
    flags = [p.requires_grad for p in trainer.discriminator.parameters()]
    trainer.discriminator.requires_grad_(False)
    torch.manual_seed(seed)
    rows = [{"step": 0, "loss": _probe_loss(trainer, real, noise)}]
    try:
        for step in range(1, steps + 1):
            _, batch = trainer.real_batch()
            fake = trainer.generator(trainer.noise(batch.shape[0]))
            loss = trainer.objective.generator_loss(trainer.discriminator(batch), trainer.discriminator(fake))
            trainer.g_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            trainer.g_optimizer.step()
            if step % every == 0 or step == steps:
                rows.append({"step": step, "loss": _probe_loss(trainer, real, noise)})
    finally:
        for p, flag in zip(trainer.discriminator.parameters(), flags):
            p.requires_grad_(flag)
    return rows
