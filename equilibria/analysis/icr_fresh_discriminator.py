"""A fresh discriminator learns slower against better generators (ICR Section 4, Figure 5).

The paper's hypothesis: how quickly a discriminator picks up an imperfection of the generator is
correlated with how visible the imperfection is. Its evidence: against fixed generators of rising
quality (one run stopped early at several points), a new discriminator, started from a network
trained on the dataset's classes "to prevent the initial phase of training from polluting the
measurements", raises its accuracy of real against generated more slowly the better the generator.

Here: ``classifier_start`` trains the discriminator's architecture on the class labels (a linear
head of 10 on the features that enter its score layer, the last Linear or Conv2d), and
``fresh_discriminator`` gives it a newly initialised score layer. ``learning_curve`` trains that
discriminator against one fixed generator (Adam on the log loss, the nonsaturating GAN's) and
measures its accuracy on held-out real and generated images; ``learning_rate`` is the curve's
mean, the area under it per step (higher: learned faster).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NUM_CLASSES = 10


def score_layer(discriminator: nn.Module) -> nn.Module:
    """The discriminator's last Linear or Conv2d: its score layer, with one output."""
    layers = [m for m in discriminator.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not layers:
        raise ValueError(f"discriminator {type(discriminator).__name__}: has no Linear or Conv2d layer whose inputs "
                         "could be the features of a classifier")
    layer = layers[-1]
    outputs = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    if outputs != 1:
        raise ValueError(f"discriminator {type(discriminator).__name__}: its last layer has {outputs} outputs; "
                         "allowed: one (a score layer)")
    return layer


def reinitialised(module: nn.Module, seed: int) -> nn.Module:
    """A copy of ``module`` with every layer's ``reset_parameters`` drawn from ``seed`` (the global random
    state is left as it was)."""
    module = copy.deepcopy(module)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in module.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
    return module


def _accuracy(logits: Tensor, labels: Tensor) -> float:
    return (logits.argmax(1) == labels).double().mean().item()


def classifier_start(discriminator: nn.Module, images: Tensor, labels: Tensor, *, steps: int, batch_size: int = 64,
                     lr: float = 1e-3, seed: int = 0, test: tuple[Tensor, Tensor] | None = None
                     ) -> tuple[nn.Module, float]:
    """A copy of ``discriminator`` (newly initialised from ``seed``) trained ``steps`` Adam steps to
    classify ``images`` (in the discriminator's input range) into ``labels`` 0..9 through a linear
    head on its score layer's inputs; returns it and its accuracy on ``test`` (nan without)."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size: got {steps} and {batch_size}; allowed: integers >= 1")
    if labels.shape != (len(images),) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(f"labels: need one class in 0..{NUM_CLASSES - 1} per image")
    network = reinitialised(discriminator, seed).train()
    layer = score_layer(network)
    features: list[Tensor] = []
    hook = layer.register_forward_pre_hook(lambda module, inputs: features.append(inputs[0].flatten(1)))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network(images[:1])
            head = nn.Linear(features.pop().shape[1], NUM_CLASSES)

            def logits(x: Tensor) -> Tensor:
                network(x)
                return head(features.pop())

            optimizer = torch.optim.Adam([*network.parameters(), *head.parameters()], lr=lr)
            generator = torch.Generator().manual_seed(seed)
            for _ in range(steps):
                index = torch.randint(len(images), (batch_size,), generator=generator)
                loss = F.cross_entropy(logits(images[index]), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            network.eval()
            with torch.no_grad():
                accuracy = _accuracy(logits(test[0]), test[1]) if test is not None else float("nan")
    finally:
        hook.remove()
    return network, accuracy


def fresh_discriminator(start: nn.Module, seed: int) -> nn.Module:
    """A copy of ``start`` whose score layer is newly initialised from ``seed`` (the rest kept)."""
    network = copy.deepcopy(start)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        score_layer(network).reset_parameters()
    return network


@torch.no_grad()
def real_fake_accuracy(discriminator: nn.Module, real: Tensor, fake: Tensor) -> float:
    """The mean of the accuracies on real (score > 0) and on generated (score < 0) images."""
    was_training = discriminator.training
    discriminator.eval()
    try:
        return 0.5 * ((discriminator(real) > 0).double().mean() + (discriminator(fake) < 0).double().mean()).item()
    finally:
        discriminator.train(was_training)


def learning_curve(discriminator: nn.Module, real: Tensor, generate: Callable[[int], Tensor], *, test_real: Tensor,
                   test_fake: Tensor, steps: int, every: int, batch_size: int = 64, lr: float = 2e-4,
                   betas: tuple[float, float] = (0.5, 0.999), seed: int = 0) -> list[dict[str, float]]:
    """Train a copy of ``discriminator`` ``steps`` Adam steps on the log loss, real batches drawn from
    ``real`` and generated ones from ``generate(n)``; rows ``step``, ``accuracy`` (on ``test_real``
    and ``test_fake``) every ``every`` steps, from step 0."""
    if steps < 1 or every < 1 or batch_size < 1:
        raise ValueError(f"steps, every and batch_size: got {steps}, {every} and {batch_size}; "
                         "allowed: integers >= 1")
    network = copy.deepcopy(discriminator).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=lr, betas=betas)
    generator = torch.Generator().manual_seed(seed)
    rows = [{"step": 0, "accuracy": real_fake_accuracy(network, test_real, test_fake)}]
    for step in range(1, steps + 1):
        index = torch.randint(len(real), (batch_size,), generator=generator)
        with torch.no_grad():
            fake = generate(batch_size)
        loss = F.softplus(-network(real[index])).mean() + F.softplus(network(fake)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % every == 0 or step == steps:
            rows.append({"step": step, "accuracy": real_fake_accuracy(network, test_real, test_fake)})
    return rows


def learning_rate(rows: list[dict[str, float]]) -> float:
    """How fast the accuracy rose: the area under the accuracy curve (trapezoids) over the steps, per step."""
    if len(rows) < 2:
        raise ValueError("rows: need at least two measurements")
    area = sum(0.5 * (a["accuracy"] + b["accuracy"]) * (b["step"] - a["step"]) for a, b in zip(rows, rows[1:]))
    return area / (rows[-1]["step"] - rows[0]["step"])
