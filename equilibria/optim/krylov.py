"""Krylov solvers for the linear systems of competitive gradient descent, on flat vectors.

``conjugate_gradient`` solves a symmetric positive-definite system (ACGD's symmetrised form,
ICR Appendix A.5); ``gmres`` (restarted, Saad & Schultz 1986) solves a general one (the block
system of a general-sum game). Both take the operator as a function ``matvec(p) -> A p`` and stop
when ``||b - A x|| <= max(tol * ||b||, atol)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

MatVec = Callable[[Tensor], "Tensor | tuple[Tensor, Tensor]"]


@dataclass(frozen=True)
class SolveResult:
    """The solution, the iterations (operator products after the initial residual), the final
    relative residual ||r|| / ||b|| (0 when b = 0), whether the tolerance was met, and for CG a
    linear image ``L x`` of the solution kept alongside (None when the operator gives none)."""

    solution: Tensor
    iterations: int
    residual: float
    converged: bool
    image: Tensor | None = None


def _check(b: Tensor, x0: Tensor | None, tol: float, atol: float, max_iter: int | None) -> int:
    if b.dim() != 1:
        raise ValueError(f"b: got a tensor of shape {tuple(b.shape)}; allowed: a 1-D vector")
    if x0 is not None and x0.shape != b.shape:
        raise ValueError(f"x0: got shape {tuple(x0.shape)}; allowed: the shape of b, {tuple(b.shape)}")
    if not tol >= 0 or not atol >= 0:
        raise ValueError(f"tol, atol: got {tol}, {atol}; allowed: numbers >= 0")
    if max_iter is not None and max_iter < 0:
        raise ValueError(f"max_iter: got {max_iter}; allowed: an integer >= 0, or None (the system size)")
    return b.numel() if max_iter is None else max_iter


def _split(out: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor | None]:
    return (out[0], out[1]) if isinstance(out, tuple) else (out, None)


def conjugate_gradient(matvec: MatVec, b: Tensor, x0: Tensor | None = None, *, tol: float = 1e-6,
                       atol: float = 0.0, max_iter: int | None = None) -> SolveResult:
    """Solve A x = b for symmetric positive-definite A by conjugate gradient (Hestenes & Stiefel 1952).

    A warm start ``x0`` begins from the residual b - A x0 (one extra product). ``matvec`` may
    return a pair ``(A p, L p)`` for a linear map L that the product computes on the way; CG then
    keeps ``L x`` as ``x`` moves (L x = L x0 + sum alpha_k L p_k) at no extra product, returned as
    ``image``. ``max_iter`` None allows as many iterations as unknowns.
    """
    limit = _check(b, x0, tol, atol, max_iter)
    b_norm = torch.linalg.vector_norm(b).item()
    if b_norm == 0.0:  # the solution is 0; a warm start cannot improve on it
        return SolveResult(torch.zeros_like(b), 0, 0.0, True, None)
    threshold = max(tol * b_norm, atol)
    image = None
    if x0 is None:
        x, r = torch.zeros_like(b), b.clone()
    else:
        ax0, image = _split(matvec(x0))
        x, r = x0.clone(), b - ax0
        image = None if image is None else image.clone()
    p = r.clone()
    rr = torch.dot(r, r).item()
    iterations = 0
    while math.sqrt(rr) > threshold and iterations < limit:
        ap, lp = _split(matvec(p))
        curvature = torch.dot(p, ap).item()
        if not curvature > 0:  # not positive definite, or not finite
            raise FloatingPointError(f"conjugate_gradient: p'Ap = {curvature} at iteration {iterations}; "
                                     "the operator is not symmetric positive definite (or produced nan/inf)")
        alpha = rr / curvature
        x.add_(p, alpha=alpha)
        r.sub_(ap, alpha=alpha)
        if lp is not None:
            image = lp.mul(alpha) if image is None else image.add_(lp, alpha=alpha)
        rr, rr_old = torch.dot(r, r).item(), rr
        p.mul_(rr / rr_old).add_(r)
        del ap, lp  # not alive during the next product: a copy of both players less at the peak
        iterations += 1
    residual = math.sqrt(rr)
    return SolveResult(x, iterations, residual / b_norm, residual <= threshold, image)


def gmres(matvec: Callable[[Tensor], Tensor], b: Tensor, x0: Tensor | None = None, *, tol: float = 1e-6,
          atol: float = 0.0, max_iter: int | None = None, restart: int = 30) -> SolveResult:
    """Solve A x = b for a general square A by restarted GMRES(restart).

    Arnoldi with modified Gram-Schmidt and Givens rotations; the least-squares residual decides
    convergence, and each restart recomputes the true residual b - A x. ``max_iter`` counts
    products in the Arnoldi steps (None: the system size).
    """
    limit = _check(b, x0, tol, atol, max_iter)
    if restart < 1:
        raise ValueError(f"restart: got {restart}; allowed: an integer >= 1")
    b_norm = torch.linalg.vector_norm(b).item()
    if b_norm == 0.0:
        return SolveResult(torch.zeros_like(b), 0, 0.0, True)
    threshold = max(tol * b_norm, atol)
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b.clone() if x0 is None else b - matvec(x0)
    beta = torch.linalg.vector_norm(r).item()
    iterations = 0
    while beta > threshold and iterations < limit:
        m = min(restart, limit - iterations)
        basis = [r / beta]
        hessenberg = torch.zeros(m + 1, m, dtype=torch.float64)
        cosines, sines = torch.zeros(m, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
        g = torch.zeros(m + 1, dtype=torch.float64)
        g[0] = beta
        k = 0
        while k < m:
            w = matvec(basis[k])
            iterations += 1
            for i, v in enumerate(basis):
                hessenberg[i, k] = torch.dot(w, v).item()
                w = w - hessenberg[i, k].item() * v
            hessenberg[k + 1, k] = torch.linalg.vector_norm(w).item()
            for i in range(k):  # apply the earlier rotations to the new column
                hik, hi1k = hessenberg[i, k].clone(), hessenberg[i + 1, k].clone()
                hessenberg[i, k] = cosines[i] * hik + sines[i] * hi1k
                hessenberg[i + 1, k] = -sines[i] * hik + cosines[i] * hi1k
            denominator = math.hypot(hessenberg[k, k].item(), hessenberg[k + 1, k].item())
            cosines[k], sines[k] = hessenberg[k, k] / denominator, hessenberg[k + 1, k] / denominator
            lucky = hessenberg[k + 1, k].item() <= 1e-14 * denominator
            if not lucky:
                basis.append(w / hessenberg[k + 1, k].item())
            hessenberg[k, k], hessenberg[k + 1, k] = denominator, 0.0
            g[k + 1], g[k] = -sines[k] * g[k], cosines[k] * g[k]
            k += 1
            if abs(g[k].item()) <= threshold or lucky:
                break
        coefficients = torch.linalg.solve_triangular(hessenberg[:k, :k], g[:k, None], upper=True)[:, 0]
        for coefficient, v in zip(coefficients.tolist(), basis):
            x.add_(v, alpha=coefficient)
        r = b - matvec(x)
        beta = torch.linalg.vector_norm(r).item()
    return SolveResult(x, iterations, beta / b_norm, beta <= threshold)
