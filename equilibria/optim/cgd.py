"""Competitive gradient descent (CGD) and adaptive CGD (ACGD) for games min_x max_y f(x, y).

Each step moves both players to the Nash equilibrium of the local game (ICR Section 5 and
Appendix A.5; Schaefer & Anandkumar 2019)

    min_dx  dx' grad_x f + dx' D_xy f dy + 1/2 dx' A_x^-1 dx,
    max_dy  dy' grad_y f + dy' D_yx f dx - 1/2 dy' A_y^-1 dy,

that is, dx = -A_x (grad_x f + D_xy f dy) and dy = A_y (grad_y f + D_yx f dx), with diagonal
step sizes A: CGD's are fixed per player, ACGD's come from RMSprop-type second-moment estimates
with bias correction (Algorithm 1). The players' system is solved by conjugate gradient on the
symmetric positive-definite form of Algorithm 1 for the player with fewer parameters a (b is the
other player, sigma_x = -1, sigma_y = +1):

    (I + A_a^1/2 D_ab A_b D_ba A_a^1/2) s = A_a^1/2 (grad_a + sigma_b D_ab A_b grad_b),
    d_a = sigma_a A_a^1/2 s,    d_b = sigma_b A_b (grad_b + sigma_a D_ba A_a^1/2 s),

warm-started from the previous step's s. With ``solver="gmres"`` the unsymmetrised block system
is solved instead, which also serves general-sum games: ``step((f, g))`` lets the min player
minimise f and the max player maximise g.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from equilibria.optim.hvp import MixedHessian, unflatten
from equilibria.optim.krylov import conjugate_gradient, gmres

SOLVERS = ("cg", "gmres")
Loss = Tensor | tuple[Tensor, Tensor] | Callable[[], "Tensor | tuple[Tensor, Tensor]"]
Product = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class CompetitiveUpdate:
    """The players' moves, the solver's solution (next step's warm start) and its statistics."""

    delta_x: Tensor
    delta_y: Tensor
    solution: Tensor
    iterations: int
    residual: float
    converged: bool


def competitive_update(grad_x: Tensor, grad_y: Tensor, step_x: Tensor, step_y: Tensor, xy: Product, yx: Product,
                       *, solver: str = "cg", solve_for: str = "x", warm_start: Tensor | None = None,
                       tol: float = 1e-6, atol: float = 0.0, max_iter: int | None = None,
                       restart: int = 30) -> CompetitiveUpdate:
    """One CGD step with diagonal step sizes ``step_x``, ``step_y`` (scalars or one per parameter).

    ``xy(w)`` = D_xy f w and ``yx(v)`` = D_yx g v (g = f for zero-sum games; ``solver="cg"`` needs
    a zero-sum game). ``grad_y`` is the max player's gradient, of g.
    """
    if solver == "gmres":
        return _block_update(grad_x, grad_y, step_x, step_y, xy, yx, warm_start, tol, atol, max_iter, restart)
    if solver != "cg":
        raise ValueError(f"solver: got {solver!r}; allowed: {', '.join(SOLVERS)}")
    if solve_for == "x":
        g_a, g_b, a_a, a_b, d_ab, d_ba, sign_a, sign_b = grad_x, grad_y, step_x, step_y, xy, yx, -1.0, 1.0
    elif solve_for == "y":
        g_a, g_b, a_a, a_b, d_ab, d_ba, sign_a, sign_b = grad_y, grad_x, step_y, step_x, yx, xy, 1.0, -1.0
    else:
        raise ValueError(f"solve_for: got {solve_for!r}; allowed: x, y")
    root = a_a.sqrt()

    # In-place arithmetic on the products' fresh outputs: each temporary is a copy of a player's
    # parameters at the step's memory peak (docs/BENCHMARKS.md).
    def matvec(p: Tensor) -> tuple[Tensor, Tensor]:
        cross = d_ba(root * p).mul_(a_b)  # A_b D_ba A_a^1/2 p, which CG carries along to A_b D_ba A_a^1/2 s
        return d_ab(cross).mul_(root).add_(p), cross

    rhs = d_ab(a_b * g_b).mul_(sign_b).add_(g_a).mul_(root)
    result = conjugate_gradient(matvec, rhs, warm_start, tol=tol, atol=atol, max_iter=max_iter)
    del rhs
    cross = result.image if result.image is not None else torch.zeros_like(g_b)
    delta_a = result.solution.mul(root).mul_(sign_a)
    delta_b = cross.mul_(sign_a).add_(a_b * g_b).mul_(sign_b)  # sigma_b A_b (g_b + sigma_a D_ba A_a^1/2 s)
    delta_x, delta_y = (delta_a, delta_b) if solve_for == "x" else (delta_b, delta_a)
    return CompetitiveUpdate(delta_x, delta_y, result.solution, result.iterations, result.residual, result.converged)


def _block_update(grad_x: Tensor, grad_y: Tensor, step_x: Tensor, step_y: Tensor, xy: Product, yx: Product,
                  warm_start: Tensor | None, tol: float, atol: float, max_iter: int | None,
                  restart: int) -> CompetitiveUpdate:
    """The local game's optimality conditions in the variables p = A_x^-1/2 dx, q = A_y^-1/2 dy:

        p + A_x^1/2 D_xy f A_y^1/2 q = -A_x^1/2 grad_x f,    q - A_y^1/2 D_yx g A_x^1/2 p = A_y^1/2 grad_y g,

    solved by GMRES (identity plus a skew-symmetric operator when g = f)."""
    root_x, root_y = step_x.sqrt(), step_y.sqrt()
    n = grad_x.numel()

    def matvec(z: Tensor) -> Tensor:
        p, q = z[:n], z[n:]
        return torch.cat([p + root_x * xy(root_y * q), q - root_y * yx(root_x * p)])

    rhs = torch.cat([-root_x * grad_x, root_y * grad_y])
    result = gmres(matvec, rhs, warm_start, tol=tol, atol=atol, max_iter=max_iter, restart=restart)
    z = result.solution
    return CompetitiveUpdate(root_x * z[:n], root_y * z[n:], z, result.iterations, result.residual, result.converged)


def _parameters(name: str, params: Iterable[Tensor]) -> list[Tensor]:
    if isinstance(params, Tensor):
        raise TypeError(f"{name}: got a tensor; allowed: an iterable of tensors, e.g. module.parameters() or [x]")
    params = list(params)
    if not params:
        raise ValueError(f"{name}: got no parameters; allowed: at least one tensor")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor) or not p.is_leaf or not p.requires_grad:
            raise ValueError(f"{name}[{i}]: got {type(p).__name__}"
                             f"{'' if not isinstance(p, Tensor) else ' that is not a leaf tensor requiring grad'}; "
                             "allowed: leaf tensors with requires_grad=True (parameters)")
    if len({id(p) for p in params}) != len(params):
        raise ValueError(f"{name}: a tensor appears twice; allowed: distinct tensors")
    return params


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name}: got {value!r}; allowed: a finite number > 0")
    return float(value)


class CGD:
    """Competitive gradient descent on one loss f: ``min_params`` minimise it, ``max_params`` maximise it.

    ``step(loss)`` (or ``step(closure)``, the closure returning the loss with its graph, without
    calling backward) computes the gradients and mixed Hessian products itself, moves both players
    and returns logs: solver iterations, final relative residual, Hessian-vector products. It does
    not read, write or delete the parameters' ``.grad`` (``zero_grad`` is there for habit).
    Step sizes: ``lr`` for both, or ``lr_min``/``lr_max`` per player. The linear system is solved
    to ``||r|| <= max(tol ||b||, atol)`` within ``max_iter`` iterations (None: no cap but the system
    size), starting from the previous step's solution unless ``warm_start=False``.
    """

    def __init__(self, *, min_params: Iterable[Tensor], max_params: Iterable[Tensor], lr: float = 1e-3,
                 lr_min: float | None = None, lr_max: float | None = None, tol: float = 1e-6, atol: float = 1e-10,
                 max_iter: int | None = None, solver: str = "cg", restart: int = 30, warm_start: bool = True,
                 average: Callable[[Sequence[Tensor]], None] | None = None):
        self.min_params = _parameters("min_params", min_params)
        self.average = average  # data parallelism: the mean over processes of each gradient and product
        self.max_params = _parameters("max_params", max_params)
        if {id(p) for p in self.min_params} & {id(p) for p in self.max_params}:
            raise ValueError("min_params, max_params: a tensor belongs to both players; allowed: disjoint players")
        kinds = {(p.dtype, p.device) for p in self.min_params + self.max_params}
        if len(kinds) > 1:
            raise ValueError(f"min_params, max_params: got dtypes/devices {sorted(map(str, kinds))}; "
                             "allowed: one dtype and device for all parameters")
        if solver not in SOLVERS:
            raise ValueError(f"solver: got {solver!r}; allowed: {', '.join(SOLVERS)}")
        if not (tol >= 0 and atol >= 0):
            raise ValueError(f"tol, atol: got {tol!r}, {atol!r}; allowed: numbers >= 0")
        if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1):
            raise ValueError(f"max_iter: got {max_iter!r}; allowed: an integer >= 1, or None")
        if isinstance(restart, bool) or not isinstance(restart, int) or restart < 1:
            raise ValueError(f"restart: got {restart!r}; allowed: an integer >= 1")
        _positive("lr", lr)
        self.hyperparameters: dict[str, Any] = {
            "lr_min": _positive("lr_min", lr if lr_min is None else lr_min),
            "lr_max": _positive("lr_max", lr if lr_max is None else lr_max),
            "tol": float(tol), "atol": float(atol), "max_iter": max_iter, "solver": solver, "restart": restart,
            "warm_start": bool(warm_start),
        }
        self.sizes = (sum(p.numel() for p in self.min_params), sum(p.numel() for p in self.max_params))
        # CG works in the space of the player with fewer parameters: cheaper vector operations.
        self.solve_for = "x" if self.sizes[0] <= self.sizes[1] else "y"
        self.state: dict[str, Any] = {"step": 0, "warm_start": None}

    # -- the step ---------------------------------------------------------------------------------
    def step(self, loss: Loss) -> dict[str, float]:
        """Move both players by one CGD step on ``loss`` (a tensor, a pair (f, g), or a closure). Returns
        the solver's statistics and the norms of the two players' gradients (``grad_norm_min``, of f in
        the minimiser's parameters, and ``grad_norm_max``, of g in the maximiser's)."""
        if callable(loss) and not isinstance(loss, Tensor):
            with torch.enable_grad():
                loss = loss()
        f, g = self._split(loss)
        hessian_f = MixedHessian(f, self.min_params, self.max_params, self.average)
        hessian_g = hessian_f if g is f else MixedHessian(g, self.min_params, self.max_params, self.average)
        grad_x, grad_y = hessian_f.grad_x, hessian_g.grad_y
        step_x, step_y, new_state = self._step_sizes(grad_x, grad_y)
        h = self.hyperparameters
        start = self.state["warm_start"] if h["warm_start"] else None
        update = competitive_update(grad_x, grad_y, step_x, step_y, hessian_f.xy, hessian_g.yx, solver=h["solver"],
                                    solve_for=self.solve_for, warm_start=start, tol=h["tol"], atol=h["atol"],
                                    max_iter=h["max_iter"], restart=h["restart"])
        if not (torch.isfinite(update.delta_x).all() and torch.isfinite(update.delta_y).all()):
            raise FloatingPointError(f"{type(self).__name__}.step: the update is not finite (gradient norms "
                                     f"{grad_x.norm().item():.3g}, {grad_y.norm().item():.3g}; solver residual "
                                     f"{update.residual:.3g}); the parameters were left unchanged")
        with torch.no_grad():
            torch._foreach_add_(self.min_params, unflatten(update.delta_x, self.min_params))
            torch._foreach_add_(self.max_params, unflatten(update.delta_y, self.max_params))
        self.state.update(new_state, step=self.state["step"] + 1,
                          warm_start=update.solution.detach() if h["warm_start"] else None)
        products = hessian_f.products + (hessian_g.products if hessian_g is not hessian_f else 0)
        solver = h["solver"]
        return {f"{solver}/iterations": float(update.iterations), f"{solver}/residual": update.residual,
                f"{solver}/converged": float(update.converged), f"{solver}/hvps": float(products),
                "grad_norm_min": grad_x.norm(), "grad_norm_max": grad_y.norm()}

    def _split(self, loss: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        if isinstance(loss, (tuple, list)):
            if len(loss) != 2:
                raise ValueError(f"loss: got a sequence of {len(loss)}; allowed: a tensor, or a pair (f, g)")
            if self.hyperparameters["solver"] != "gmres":
                raise ValueError("loss: got a pair (f, g), a general-sum game; it needs solver='gmres' "
                                 "(conjugate gradient needs the symmetric system of a zero-sum game)")
            return loss[0], loss[1]
        return loss, loss

    def _step_sizes(self, grad_x: Tensor, grad_y: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The players' step sizes A_x, A_y, and the state to keep once the step succeeds."""
        h = self.hyperparameters
        return grad_x.new_tensor(h["lr_min"]), grad_y.new_tensor(h["lr_max"]), {}

    # -- torch.optim habits -----------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the parameters' ``.grad`` (``step`` itself never uses or changes them)."""
        for p in self.min_params + self.max_params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters and state as tensors and plain values (``torch.load(weights_only=True)``)."""
        return {"hyperparameters": dict(self.hyperparameters), "sizes": list(self.sizes), "solve_for": self.solve_for,
                **{k: (v.clone() if isinstance(v, Tensor) else v) for k, v in self.state.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict`` (hyperparameters included, as torch.optim does)."""
        name = type(self).__name__
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(f"{name}.load_state_dict: got keys {sorted(state)}; allowed: {sorted(expected)}")
        if list(state["sizes"]) != list(self.sizes):
            raise ValueError(f"{name}.load_state_dict: the state is for players of {list(state['sizes'])} "
                             f"parameters; these players have {list(self.sizes)}")
        device = self.min_params[0].device
        self.hyperparameters = dict(state["hyperparameters"])
        self.solve_for = state["solve_for"]
        self.state = {k: (state[k].to(device) if isinstance(state[k], Tensor) else state[k]) for k in self.state}


class ACGD(CGD):
    """Adaptive CGD (ICR Appendix A.5, Algorithm 1): per-parameter step sizes
    eta = lr / (sqrt(v / (1 - beta^t)) + eps) with v <- beta v + (1 - beta) grad^2 per player.

    ``lr`` (alpha) for both players, or ``lr_min``/``lr_max``; the defaults are the paper's
    (alpha = 1e-4, beta2 = 0.99, eps = 1e-5). The moments are kept uncorrected and the correction
    applied to the step (Algorithm 1 writes the corrected value back into v; read literally, that
    would compound the correction). eps is added after the bias-corrected root, as in Algorithm 1
    and torch.optim.Adam (the reference package CGDs adds it before: eps * sqrt(1 - beta^t) here).
    """

    def __init__(self, *, min_params: Iterable[Tensor], max_params: Iterable[Tensor], lr: float = 1e-4,
                 lr_min: float | None = None, lr_max: float | None = None, beta: float = 0.99, eps: float = 1e-5,
                 tol: float = 1e-6, atol: float = 1e-10, max_iter: int | None = None, solver: str = "cg",
                 restart: int = 30, warm_start: bool = True,
                 average: Callable[[Sequence[Tensor]], None] | None = None):
        super().__init__(min_params=min_params, max_params=max_params, lr=lr, lr_min=lr_min, lr_max=lr_max, tol=tol,
                         atol=atol, max_iter=max_iter, solver=solver, restart=restart, warm_start=warm_start,
                         average=average)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
            raise ValueError(f"beta: got {beta!r}; allowed: a number in [0, 1)")
        self.hyperparameters.update(beta=float(beta), eps=_positive("eps", eps))
        self.state.update(sq_avg_min=None, sq_avg_max=None)

    def _step_sizes(self, grad_x: Tensor, grad_y: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        h = self.hyperparameters
        beta, t = h["beta"], self.state["step"] + 1
        correction = 1 - beta ** t
        sizes, moments = [], {}
        for key, grad, lr in (("sq_avg_min", grad_x, h["lr_min"]), ("sq_avg_max", grad_y, h["lr_max"])):
            avg = self.state[key]  # a new tensor, not updated in place: a refused step keeps the old state
            moments[key] = (torch.addcmul(grad.new_zeros(()), grad, grad, value=1 - beta) if avg is None
                            else avg.mul(beta).addcmul_(grad, grad, value=1 - beta))
            # lr / (sqrt(v / correction) + eps) in one buffer: a copy of the parameters less at the peak
            sizes.append(moments[key].div(correction).sqrt_().add_(h["eps"]).reciprocal_().mul_(lr))
        return sizes[0], sizes[1], moments
