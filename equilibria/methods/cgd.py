"""Competitive gradient descent as a method: ICR's ACGD (Appendix A.5, Algorithm 1) or plain CGD
moves both players at once from the Nash equilibrium of the local bilinear game (Section 5).

The optimizers themselves are ``equilibria.optim.CGD`` and ``ACGD`` (docs/CGD.md): use them in any
loop as ``ACGD(min_params=G.parameters(), max_params=D.parameters()).step(f)``. This module is the
``cgd`` config section: it switches the trainer to joint updates, in which the generator minimises
f = -L_adv and the adversary maximises it (the hinge untruncated), penalties included. ICR's
checkpoint analysis (Figure 4) is `equilibria.analysis.icr_checkpoint`.
"""

from __future__ import annotations

from typing import Any, Literal

from equilibria.core.method import BuildContext, Contribution, Method
from equilibria.core.objectives import Objective
from equilibria.core.sections import Bool, ConfigError, Float, Int, MethodConfig, option
from equilibria.optim import ACGD, CGD
from equilibria.optim.cgd import SOLVERS


class CgdConfig(MethodConfig):
    """``cgd``: competitive gradient descent; sets ``train.update: joint``."""

    name: Literal["acgd", "cgd"] = option("acgd", "adaptive CGD (ICR Algorithm 1) or CGD with fixed step sizes")
    lr: Float = option(1e-4, "ACGD's alpha (ICR: 1e-4); CGD's step size", gt=0.0)
    lr_generator: Float | None = option(None, "the generator's step size; null: lr", gt=0.0)
    lr_adversary: Float | None = option(None, "the adversary's step size; null: lr", gt=0.0)
    beta: Float = option(0.99, "ACGD's beta2 of the second-moment estimate", ge=0.0, lt=1.0)
    eps: Float = option(1e-5, "ACGD's epsilon", gt=0.0)
    solver: Literal[SOLVERS] = option("cg", "conjugate gradient on the symmetric form, or GMRES on the block "
                                      "system")
    tol: Float = option(1e-6, "relative residual of the linear solve", ge=0.0)
    atol: Float = option(1e-10, "absolute residual of the linear solve", ge=0.0)
    max_iter: Int | None = option(None, "solver iterations per step; null: no cap", ge=1)
    restart: Int = option(30, "GMRES restart length", ge=1)
    warm_start: Bool = option(True, "start the solver from the previous step's solution")


def _check_config(section: CgdConfig, config: Any, objective: Objective) -> None:
    for player in ("generator", "adversary"):
        decay = getattr(config.optim, player).decay
        if section.enabled and decay != "constant":
            raise ConfigError(f"config key 'optim.{player}.decay': got {decay!r} with cgd.enabled=true; allowed: "
                              "constant (the joint step has its own step sizes, cgd.lr_generator and cgd.lr_adversary)")
    if section.enabled and objective.value is None:
        raise ConfigError(f"config key 'cgd.enabled': got true with objective={objective.name}; allowed: an "
                          "objective with a zero-sum game (its generator's loss is not the negative of the "
                          "adversary's, which a joint update needs)")


def _build(section: CgdConfig, context: BuildContext) -> Contribution:
    options = section.model_dump(exclude={"enabled", "name", "beta", "eps", "lr_generator", "lr_adversary"})
    common = dict(min_params=context.generator.parameters(), max_params=context.discriminator.parameters(),
                  lr_min=section.lr_generator, lr_max=section.lr_adversary, **options,
                  average=context.parallel.average if context.parallel.world > 1 else None)
    optimizer = ACGD(beta=section.beta, eps=section.eps, **common) if section.name == "acgd" else CGD(**common)
    return Contribution(joint_optimizer=optimizer)


METHOD = Method("cgd", CgdConfig, _build, check=_check_config, implies={"train.update": "joint"})
