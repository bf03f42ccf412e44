"""Low-dimensional zero-sum games min_x max_y f(x, y), and how gradient methods play them.

The quadratic game f = x^2 + 10xy + y^2 of ICR Eq. 3, the bilinear game f = xy, or any function
f(x, y) -> scalar of 1-D tensors. Four methods with a step size per player: simultaneous gradient
descent-ascent (SimGD), alternating gradient descent-ascent (AltGD: the max player moves first,
then the min player against its new position, as the trainer's alternating updates), CGD and ACGD
(``equilibria.optim``). A run reports whether it converged to the stationary point or diverged,
and the spectral radius of the Jacobian of the update map there (ICR Section 4: a stationary
point attracts the iteration when the radius is below one; Mescheder et al. 2017, Prop. 3).
Everything runs in float64.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from equilibria.optim import ACGD, CGD

GameFunction = Callable[[Tensor, Tensor], Tensor]
METHODS = ("simgd", "altgd", "cgd", "acgd")
DTYPE = torch.float64


@dataclass(frozen=True)
class Game:
    """f(x, y), minimised in x and maximised in y; ``stationary`` is a known stationary point (x, y)."""

    name: str
    formula: str
    f: GameFunction
    stationary: tuple[Tensor, Tensor] | None = None


def _quadratic(x: Tensor, y: Tensor) -> Tensor:
    return (x**2 + 10 * x * y + y**2).sum()  # ICR Eq. 3


def _bilinear(x: Tensor, y: Tensor) -> Tensor:
    return (x * y).sum()


BUILTIN = {"quadratic": (_quadratic, "x^2 + 10xy + y^2 (ICR Eq. 3)"), "bilinear": (_bilinear, "xy")}


def load_game(spec: str, dims: tuple[int, int] = (1, 1)) -> Game:
    """A built-in game (quadratic, bilinear) or ``module:function`` / ``path/to/file.py:function``.

    A user's function is imported (never evaluated from text) and must map two 1-D float64
    tensors of sizes ``dims`` to a scalar tensor; its stationary point is found by Newton's method.
    """
    if spec in BUILTIN:
        if dims[0] != dims[1]:
            raise ValueError(f"--x0/--y0: the {spec} game pairs x and y coordinate by coordinate; got sizes "
                             f"{dims[0]} and {dims[1]}; allowed: equal sizes")
        f, formula = BUILTIN[spec]
        zero = torch.zeros(dims[0], dtype=DTYPE)
        return Game(spec, formula, f, (zero, zero.clone()))
    f = _import_function(spec)
    x, y = torch.zeros(dims[0], dtype=DTYPE), torch.zeros(dims[1], dtype=DTYPE)
    try:
        value = f(x, y)
    except Exception as error:
        raise ValueError(f"game {spec!r}: calling it with x of size {dims[0]} and y of size {dims[1]} failed: "
                         f"{type(error).__name__}: {error}") from None
    if not isinstance(value, Tensor) or value.numel() != 1:
        raise ValueError(f"game {spec!r}: returned {type(value).__name__}"
                         f"{f' of shape {tuple(value.shape)}' if isinstance(value, Tensor) else ''}; "
                         "allowed: a scalar tensor f(x, y)")
    return Game(spec, spec, f, None)


def _import_function(spec: str) -> GameFunction:
    source, sep, name = spec.rpartition(":")
    if not sep or not source or not name:
        raise ValueError(f"game: got {spec!r}; allowed: {', '.join(BUILTIN)}, module:function or "
                         "path/to/file.py:function")
    if source.endswith(".py") or "/" in source or "\\" in source:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"game {spec!r}: no file {source!r}")
        module_spec = importlib.util.spec_from_file_location(f"equilibria_game_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as error:
            raise ValueError(f"game {spec!r}: cannot import module {source!r} ({error})") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(f"game {spec!r}: {source!r} has no function {name!r}")
    return function


# -- update maps (differentiable, for the Jacobian at the stationary point) ------------------------
def _grads(f: GameFunction, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """The partial gradients of f in its two arguments, differentiable further. The arguments are
    cloned first, so that a y computed from x does not turn the x-gradient into a total derivative."""
    with torch.enable_grad():
        xa, ya = (v.clone() if v.requires_grad else v.detach().requires_grad_() for v in (x, y))
        gx, gy = torch.autograd.grad(f(xa, ya), (xa, ya), create_graph=True, allow_unused=True,
                                     materialize_grads=True)
    return gx, gy


def simgd_map(f: GameFunction, x: Tensor, y: Tensor, lr: tuple[float, float]) -> tuple[Tensor, Tensor]:
    """Simultaneous descent in x, ascent in y from the same point."""
    gx, gy = _grads(f, x, y)
    return x - lr[0] * gx, y + lr[1] * gy


def altgd_map(f: GameFunction, x: Tensor, y: Tensor, lr: tuple[float, float]) -> tuple[Tensor, Tensor]:
    """Ascent in y, then descent in x against the new y."""
    y_new = y + lr[1] * _grads(f, x, y)[1]
    return x - lr[0] * _grads(f, x, y_new)[0], y_new


def cgd_map(f: GameFunction, x: Tensor, y: Tensor, step_x: Tensor, step_y: Tensor) -> tuple[Tensor, Tensor]:
    """The CGD step with dense mixed Hessians and diagonal step sizes (scalars or vectors):
    dx = -(I + A_x D_xy A_y D_yx)^-1 A_x (grad_x + D_xy A_y grad_y), dy = A_y (grad_y + D_yx dx)."""
    n = x.numel()
    z = torch.cat([x, y])
    hessian = torch.autograd.functional.hessian(lambda w: f(w[:n], w[n:]), z, create_graph=True)
    d_xy, d_yx = hessian[:n, n:], hessian[n:, :n]
    gx, gy = _grads(f, x, y)
    a_x, a_y = step_x.expand(n), step_y.expand(y.numel())
    system = torch.eye(n, dtype=x.dtype) + a_x[:, None] * (d_xy @ (a_y[:, None] * d_yx))
    dx = -torch.linalg.solve(system, a_x * (gx + d_xy @ (a_y * gy)))
    return x + dx, y + a_y * (gy + d_yx @ dx)


def spectral_radius(update: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]], x: Tensor, y: Tensor) -> float:
    """The largest |eigenvalue| of the Jacobian of (x, y) -> update(x, y) at (x, y)."""
    n = x.numel()
    jacobian = torch.autograd.functional.jacobian(lambda z: torch.cat(update(z[:n], z[n:])),
                                                  torch.cat([x, y]).to(DTYPE))
    return torch.linalg.eigvals(jacobian).abs().max().item()


def stationary_point(f: GameFunction, x: Tensor, y: Tensor, *, iterations: int = 50,
                     tol: float = 1e-10) -> tuple[Tensor, Tensor] | None:
    """A point with zero gradient by Newton's method on grad f = 0 from (x, y); None if it fails."""
    n = x.numel()
    z = torch.cat([x, y]).to(DTYPE)

    def gradient(w: Tensor) -> Tensor:
        w = w.detach().requires_grad_()
        return torch.cat(torch.autograd.grad(f(w[:n], w[n:]), (w,))[0].split([n, w.numel() - n]))

    for _ in range(iterations):
        g = gradient(z)
        if g.norm().item() <= tol:
            return z[:n].clone(), z[n:].clone()
        hessian = torch.autograd.functional.hessian(lambda w: f(w[:n], w[n:]), z)
        try:
            z = z - torch.linalg.solve(hessian, g)
        except RuntimeError:  # singular Hessian
            return None
        if not torch.isfinite(z).all():
            return None
    return (z[:n].clone(), z[n:].clone()) if gradient(z).norm().item() <= tol else None


# -- runs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trajectory:
    """One method's run: the points (steps + 1 rows of (x, y)), its verdict, and the spectral radius
    of its update map at the stationary point (ACGD: with its last step sizes held fixed; None when
    no stationary point is known)."""

    method: str
    lr: tuple[float, float]
    x_size: int
    points: Tensor
    stationary: Tensor | None  # (x, y) concatenated
    status: str  # converged, diverged or undecided
    distance: float  # final distance to the stationary point (nan when unknown)
    radius: float | None


def play(game: Game, method: str, lr: Sequence[float], steps: int, x0: Sequence[float], y0: Sequence[float], *,
         beta: float = 0.99, eps: float = 1e-5, tol: float = 1e-6, bound: float = 1e6,
         analyse: bool = True) -> Trajectory:
    """Run ``method`` for ``steps`` steps from (x0, y0).

    Converged: the distance to the stationary point fell below ``tol`` times the initial distance
    (times 1 when that is 0); diverged: a coordinate left [-bound, bound] or became nan/inf;
    otherwise undecided. ``analyse=False`` skips the stationary point and the spectral radius (a
    game whose trajectory is the result, such as ICR Figure 7's).
    """
    if method not in METHODS:
        raise ValueError(f"--method: got {method!r}; allowed: {', '.join(METHODS)}")
    lr = _step_sizes(lr)
    if steps < 1:
        raise ValueError(f"--steps: got {steps}; allowed: an integer >= 1")
    x = torch.tensor(list(x0), dtype=DTYPE)
    y = torch.tensor(list(y0), dtype=DTYPE)
    star = (game.stationary or stationary_point(game.f, x, y)) if analyse else None
    step, optimizer = _stepper(game.f, method, lr, x, y, beta, eps)
    points = [torch.cat([x, y])]
    status = "undecided"
    for _ in range(steps):
        try:
            point = step()
        except FloatingPointError:
            status = "diverged"
            break
        points.append(point)
        if not torch.isfinite(point).all() or point.abs().max().item() > bound:
            status = "diverged"
            break
    points = torch.stack(points)
    if star is None:
        return Trajectory(method, lr, x.numel(), points, None, status, math.nan, None)
    star_z = torch.cat(star)
    start = (points[0] - star_z).norm().item()
    distance = (points[-1] - star_z).norm().item()
    if status != "diverged" and distance <= tol * (start if start > 0 else 1.0):
        status = "converged"
    radius = spectral_radius(_linearised(game.f, method, lr, optimizer), *star)
    return Trajectory(method, lr, x.numel(), points, star_z, status, distance, radius)


def _step_sizes(lr: Sequence[float]) -> tuple[float, float]:
    lr = [float(v) for v in lr]
    if len(lr) == 1:
        lr = lr * 2
    if len(lr) != 2 or not all(v > 0 and math.isfinite(v) for v in lr):
        raise ValueError(f"--lr: got {lr}; allowed: one step size > 0 for both players, or two (x's, y's)")
    return lr[0], lr[1]


def _stepper(f: GameFunction, method: str, lr: tuple[float, float], x: Tensor, y: Tensor, beta: float,
             eps: float) -> tuple[Callable[[], Tensor], CGD | None]:
    """A function taking one step of ``method`` and returning the new (x, y), and the optimizer (CGD, ACGD)."""
    if method in ("simgd", "altgd"):
        update = simgd_map if method == "simgd" else altgd_map
        state = [x, y]

        def step() -> Tensor:
            state[:] = [v.detach() for v in update(f, state[0], state[1], lr)]
            return torch.cat(state)

        return step, None
    px, py = x.clone().requires_grad_(), y.clone().requires_grad_()
    common = dict(min_params=[px], max_params=[py], lr_min=lr[0], lr_max=lr[1], tol=1e-12, atol=0.0)
    optimizer = ACGD(lr=lr[0], beta=beta, eps=eps, **common) if method == "acgd" else CGD(lr=lr[0], **common)

    def step() -> Tensor:
        optimizer.step(lambda: f(px, py))
        return torch.cat([px.detach(), py.detach()])

    return step, optimizer


def _linearised(f: GameFunction, method: str, lr: tuple[float, float],
                optimizer: CGD | None) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """The update map whose Jacobian decides local convergence."""
    if method == "simgd":
        return lambda x, y: simgd_map(f, x, y, lr)
    if method == "altgd":
        return lambda x, y: altgd_map(f, x, y, lr)
    if method == "cgd":
        return lambda x, y: cgd_map(f, x, y, torch.tensor(lr[0], dtype=DTYPE), torch.tensor(lr[1], dtype=DTYPE))
    # ACGD: Algorithm 1's step sizes of the last step, held fixed
    h, t = optimizer.hyperparameters, optimizer.state["step"]
    sizes = [lr_player / ((optimizer.state[key] / (1 - h["beta"] ** t)).sqrt() + h["eps"])
             for key, lr_player in (("sq_avg_min", h["lr_min"]), ("sq_avg_max", h["lr_max"]))]
    return lambda x, y: cgd_map(f, x, y, sizes[0], sizes[1])


# -- pictures -----------------------------------------------------------------------------------
def plot(game: Game, trajectories: Sequence[Trajectory], path: str | Path) -> Path:
    """Trajectories in the (x[0], y[0]) plane (over the contours of f when both players are 1-D),
    and the distance to the stationary point against the step, as a PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.2), layout="constrained")
    plane, distance = figure.subplots(1, 2)
    n = trajectories[0].x_size
    finite = torch.cat([t.points[torch.isfinite(t.points).all(dim=1)] for t in trajectories])
    xs, ys = finite[:, 0], finite[:, n]
    one_dimensional = finite.shape[1] == 2
    scale = max(finite[0].abs().max().item(), 1e-3)
    spread = max(xs.abs().max().item(), ys.abs().max().item())
    if spread > 100 * scale:  # a diverging run: a symmetric log scale keeps the start visible
        plane.set_xscale("symlog", linthresh=scale)
        plane.set_yscale("symlog", linthresh=scale)
        plane.tick_params(labelsize=6)
    elif one_dimensional:
        pad = 0.1 * max((xs.max() - xs.min()).item(), (ys.max() - ys.min()).item(), 1e-3)
        gx = torch.linspace(xs.min().item() - pad, xs.max().item() + pad, 60, dtype=DTYPE)
        gy = torch.linspace(ys.min().item() - pad, ys.max().item() + pad, 60, dtype=DTYPE)
        values = torch.tensor([[game.f(a.reshape(1), b.reshape(1)).item() for a in gx] for b in gy])
        plane.contour(gx.numpy(), gy.numpy(), values.numpy(), levels=20, linewidths=0.5, cmap="Greys")
    for t in trajectories:
        label = f"{t.method} lr=({t.lr[0]:g}, {t.lr[1]:g}): {t.status}"
        plane.plot(t.points[:, 0].numpy(), t.points[:, n].numpy(), lw=1, label=label)
        if t.stationary is not None:
            distance.semilogy((t.points - t.stationary).norm(dim=1).clamp_min(1e-300).numpy(), label=label)
    plane.plot(finite[0, 0].item(), finite[0, n].item(), "ko", ms=4)
    plane.set_xlabel("x (minimises)" if one_dimensional else "x[0] (minimises)")
    plane.set_ylabel("y (maximises)" if one_dimensional else "y[0] (maximises)")
    plane.set_title(f"f(x, y) = {game.formula}")
    plane.legend(fontsize=7)
    distance.set_xlabel("step")
    distance.set_ylabel("distance to the stationary point")
    if any(t.stationary is not None for t in trajectories):
        distance.legend(fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path
