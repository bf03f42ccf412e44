"""What the discriminator does: the quantities the papers plot.

- ``advas_quantity``: r(theta, phi) = ||grad_phi L_adv(theta, phi)||^2 on one batch (AdvAs Eq. 9,
  estimated as in Eq. 10), penalties and components' terms included when ``adversary_loss``
  includes them (``trainer_advas_quantity`` uses the trainer's L_adv).
- ``output_statistics``: histograms, mean and variance of the raw outputs on real and on generated
  data (VRAL Figure 3).
- ``fake_gradient_norm``: the mean over generated samples of ||grad_x l(D(x))||, the gradient the
  generator receives (VRAL Figure 4, ||grad_{x ~ Q_theta} L_phi||).
- ``output_drift``: d_set(D_t, D_c) = sqrt(sum_{x in X_set} (D_t(x) - D_c(x))^2) on fixed real
  and fake sets (ICR Appendix A.3.1, Eq. 5), and the Euclidean distance of the weights (ICR
  Figure 4).

Each function leaves the training state alone: gradients are taken with ``torch.autograd.grad``
(no ``.grad`` is written) and the random states are restored afterwards (the gradient penalty
draws random interpolation weights). The discriminator is evaluated in the mode it is in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

DEFAULT_EDGES = np.linspace(-20.0, 20.0, 81)


@contextlib.contextmanager
def _own_rng(device: torch.device) -> Iterator[None]:
    """Restore the CPU (and this CUDA device's) random state on exit."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def advas_quantity(discriminator: nn.Module, adversary_loss: Callable[[Tensor, Tensor], Tensor], real: Tensor,
                   fake: Tensor) -> float:
    """||grad_phi L_adv||^2 over the discriminator's trainable parameters (AdvAs Eq. 9-10).

    ``adversary_loss(real, fake)`` is the scalar L_adv on the batch; ``fake`` is detached.
    """
    params = [p for p in discriminator.parameters() if p.requires_grad]
    if not params:
        raise ValueError("discriminator: has no trainable parameters; allowed: a module with parameters")
    with _own_rng(real.device), torch.enable_grad():
        loss = adversary_loss(real.detach(), fake.detach())
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    return sum(g.pow(2).sum().item() for g in grads if g is not None)


def trainer_advas_quantity(trainer, real: Tensor, fake: Tensor) -> float:
    """``advas_quantity`` with the trainer's L_adv (objective, weighted penalties, components' terms)."""
    return advas_quantity(trainer.discriminator, lambda r, f: trainer.adversary_loss(r, f)[0], real, fake)


@dataclass(frozen=True)
class OutputStatistics:
    """Mean, unbiased variance and histogram of the raw outputs on real and generated data."""

    mean_real: float
    var_real: float
    mean_fake: float
    var_fake: float
    hist_real: np.ndarray
    hist_fake: np.ndarray
    edges: np.ndarray


def _histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in the bins ``edges``; values outside the edges go to the first or last bin."""
    return np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0]


@torch.no_grad()
def output_statistics(discriminator: nn.Module, real: Tensor, fake: Tensor,
                      edges: Sequence[float] | np.ndarray | int = DEFAULT_EDGES) -> OutputStatistics:
    """Raw-output statistics of ``discriminator`` on ``real`` and ``fake`` (VRAL Figure 3).

    ``edges`` are fixed bin edges (default 80 bins over [-20, 20]), so histograms from different
    steps and runs are comparable, and outputs outside them are counted in the end bins; an integer
    is a number of equal bins spanning this call's outputs on both sets.
    """
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"real and fake: got {len(real)} and {len(fake)} samples; allowed: at least 2 each")
    d_real = discriminator(real).double().flatten().cpu()
    d_fake = discriminator(fake).double().flatten().cpu()
    if isinstance(edges, int):
        if edges < 1:
            raise ValueError(f"edges: got {edges} bins; allowed: at least 1")
        low, high = min(d_real.min(), d_fake.min()).item(), max(d_real.max(), d_fake.max()).item()
        if high - low < 1e-6:  # constant outputs: one unit around them
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, edges + 1)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges: got {edges!r}; allowed: at least two increasing bin edges, or a number of bins")
    return OutputStatistics(d_real.mean().item(), d_real.var().item(), d_fake.mean().item(), d_fake.var().item(),
                            _histogram(d_real.numpy(), edges), _histogram(d_fake.numpy(), edges), edges)


def fake_gradient_norm(discriminator: nn.Module, fake: Tensor,
                       loss: Callable[[Tensor], Tensor] | None = None) -> float:
    """Mean over samples of ||grad_x l_i|| at the generated samples x_i (VRAL Figure 4).

    ``loss(d_fake)`` maps the raw outputs (N,) to the mean of per-sample terms l_i, e.g. an
    objective's ``generator_loss``; None takes l_i = D(x_i), the raw output. Per-sample gradients
    come from one backward pass of N * loss, which is exact when D treats samples independently
    (no batch normalisation in training mode).
    """
    x = fake.detach().clone().requires_grad_(True)
    with _own_rng(x.device), torch.enable_grad():
        outputs = discriminator(x).flatten()
        total = outputs.sum() if loss is None else loss(outputs) * len(outputs)
        (grad,) = torch.autograd.grad(total, x)
    return grad.flatten(1).double().norm(dim=1).mean().item()


@dataclass(frozen=True)
class Drift:
    """How far a discriminator has moved from a checkpoint (ICR Appendix A.3.1, Eq. 5)."""

    real: float
    fake: float
    weights: float


def _named_parameters(module: nn.Module) -> dict[str, Tensor]:
    return {name: p.detach() for name, p in module.named_parameters()}


@torch.no_grad()
def output_drift(discriminator: nn.Module, checkpoint: nn.Module, real: Tensor, fake: Tensor) -> Drift:
    """d_real, d_fake = sqrt(sum_x (D_t(x) - D_c(x))^2) over the fixed sets, and ||phi_t - phi_c||_2."""
    now, then = _named_parameters(discriminator), _named_parameters(checkpoint)
    if now.keys() != then.keys() or any(now[k].shape != then[k].shape for k in now):
        raise ValueError("checkpoint: its parameters differ in names or shapes from the discriminator's; "
                         "allowed: a discriminator of the same architecture")

    def distance(x: Tensor) -> float:
        return (discriminator(x).double() - checkpoint(x).double()).flatten().norm().item()

    weights = torch.stack([(now[k].double() - then[k].double()).pow(2).sum() for k in now]).sum().sqrt().item()
    return Drift(distance(real), distance(fake), weights)
