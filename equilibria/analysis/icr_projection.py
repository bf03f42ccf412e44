"""ICR Figure 7 (Section 4, Appendix A.2): adversarial training as an approximate projection.

The generator maps its 28 weights (no input) to a point of S = {(e^(s+t), e^(s-t)) : s in [-1/2, 1/2]}:
w[0:4] -> arctan -> 4x4 dense (w[4:20]) -> arctan -> 2x4 dense (w[20:28]) -> (a, b) ->
(exp(arctan(b)/pi + a), exp(arctan(b)/pi - a)). The target P_data = (2, 2) is not in S. The discriminator
maps a point, rescaled by the diagonal eta, through 4x2, 4x4 and 1x4 dense layers (28 weights, no biases),
each followed by arctan. Eq. 4: min over the generator's weights, max over the discriminator's, of
D(eta P_data) - D(eta G(w_G)). With eta the identity the generator oscillates between the two
components; with eta = diag(1, 1e-2) (the first component "more visually prominent") it stays for
long periods accurate in the first component, and more so with CGD than with SimGD (Figure 8, A.2:
13 of 20 SimGD runs and 17 of 20 CGD runs showed the projection behaviour).

Measured here: the share of iterations whose first component is within ``tol`` of P_data's, per run.
The games are played by ``equilibria.games.play`` (SimGD, and the CGD of ``equilibria.optim``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from equilibria.games import DTYPE, Game, play

TARGET = (2.0, 2.0)
WEIGHTS = 28


def generator_output(w: Tensor) -> Tensor:
    """The generator's point (2,) in S from its 28 weights."""
    h = torch.atan(torch.atan(w[:4]) @ w[4:20].reshape(4, 4).T)
    a, b = w[20:28].reshape(2, 4) @ h
    s = torch.atan(b) / math.pi
    return torch.stack([torch.exp(s + a), torch.exp(s - a)])


def discriminator(point: Tensor, w: Tensor, eta: Sequence[float]) -> Tensor:
    """D(eta point) with the discriminator's 28 weights: a scalar."""
    h = torch.atan(w[:8].reshape(4, 2) @ (torch.as_tensor(eta, dtype=point.dtype) * point))
    h = torch.atan(w[8:24].reshape(4, 4) @ h)
    return torch.atan(w[24:28] @ h)


def projection_game(eta: Sequence[float]) -> Game:
    """Eq. 4 as a game of ``equilibria.games``: x the generator's weights, y the discriminator's."""
    target = torch.tensor(TARGET, dtype=DTYPE)

    def f(x: Tensor, y: Tensor) -> Tensor:
        return discriminator(target, y, eta) - discriminator(generator_output(x), y, eta)

    return Game(f"projection, eta = diag({eta[0]:g}, {eta[1]:g})", "D(eta P) - D(eta G(w_G)) (ICR Eq. 4)", f)


@dataclass(frozen=True)
class ProjectionRun:
    method: str
    eta: tuple[float, float]
    seed: int
    outputs: Tensor  # (steps + 1, 2): the generator's point at every iteration
    diverged: bool

    def accurate_share(self, tol: float, component: int = 0) -> float:
        """The share of iterations whose ``component`` is within ``tol`` of P_data's."""
        return float(((self.outputs[:, component] - TARGET[component]).abs() < tol).double().mean())


def run(method: str, eta: Sequence[float], seed: int, steps: int, lr: float, init_std: float = 1.0) -> ProjectionRun:
    """One run from weights N(0, init_std^2) drawn from ``seed`` (the same for every method and eta)."""
    generator = torch.Generator().manual_seed(seed)
    x0 = (torch.randn(WEIGHTS, generator=generator, dtype=DTYPE) * init_std).tolist()
    y0 = (torch.randn(WEIGHTS, generator=generator, dtype=DTYPE) * init_std).tolist()
    trajectory = play(projection_game(eta), method, [lr, lr], steps, x0, y0, analyse=False)
    outputs = torch.stack([generator_output(point[:WEIGHTS]) for point in trajectory.points])
    return ProjectionRun(method, (float(eta[0]), float(eta[1])), seed, outputs, trajectory.status == "diverged")
