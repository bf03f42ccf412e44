"""Optimizers for two-player games: competitive gradient descent (CGD) and adaptive CGD (ACGD).

    from equilibria.optim import ACGD
    optimizer = ACGD(min_params=G.parameters(), max_params=D.parameters(), lr=1e-4)
    optimizer.step(f)   # G minimises f, D maximises it; returns the solver's logs

See docs/CGD.md.
"""

from equilibria.optim.cgd import ACGD, CGD, competitive_update
from equilibria.optim.hvp import MixedHessian
from equilibria.optim.krylov import SolveResult, conjugate_gradient, gmres

__all__ = ["ACGD", "CGD", "MixedHessian", "SolveResult", "competitive_update", "conjugate_gradient", "gmres"]
