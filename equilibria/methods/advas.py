"""The Adversary's Assistant (AdvAs; advas-assisting-the-adversary, Sections 4.1-4.3, Appendix B).

The generator minimises L_gen + lambda r (Eq. 8) with r(theta, phi) = ||grad_phi L_adv(theta, phi)||^2
(Eq. 9), L_adv including the adversary's penalties. Its gradient is the mixed Hessian-vector product

    g_AdvAs = grad_theta r = 2 (grad_theta grad_phi L_adv)^T v,    v = grad_phi L_adv,

and lambda is fixed or min(1, ||g_orig|| / ||g_AdvAs||) (Eq. 11). L_adv depends on theta only through
the generator's samples x = G(z), so everything below differentiates with respect to x and ends
with one backward pass through the generator.

Modes of computing g_AdvAs:

- ``exact``: double backward (grad_x of ||grad_phi L_adv||^2 with ``create_graph``). With a
  gradient penalty inside L_adv this takes third derivatives of the discriminator. PyTorch's
  batch-, instance- and layer-norm kernels give silently wrong third derivatives (torch 2.13;
  ``gradgradcheck`` fails), so this mode evaluates L_adv with those layers computed from
  elementwise operations (``equilibria.autodiff.CompositeNorms``), which differentiate correctly to any order.
- ``hvp``: a finite difference of grad_x L_adv along v, needing no higher derivative than L_adv
  itself: ``forward`` 2 (g(phi + eps v) - g(phi)) / eps or ``central`` (g(phi + eps v) - g(phi - eps v))
  / eps, g = grad_x L_adv, with eps = eps_scale (1 + ||phi||) / ||v||. v and g(phi) come from one
  backward pass. The perturbed evaluations replay the branches that the piecewise-linear functions
  (ReLU, leaky ReLU, hardtanh, max pooling, the hinge) took at phi (``equilibria.autodiff.FrozenKinks``): without
  this, a unit crossing its kink within eps changes g by a jump that the division by eps turns
  into noise larger than the signal (on the E.1 networks the cosine to the exact value falls
  below 0.9). They also start from the same random state (the gradient penalty's interpolation
  weights) and the same discriminator buffers; phi itself is never modified.
- ``auto``: on first use, both; the hvp result if they agree (cosine >= 0.99). If they disagree,
  the other finite difference decides: when the forward and central differences agree, the exact
  derivatives are wrong (hvp is kept), else the finite difference is (exact is used); a warning
  either way. hvp if the exact mode raises (an operation without higher derivatives).

Few lines in any training loop (``G``, ``D`` modules; ``real`` the adversary's last batch)::

    fake = G(z)
    loss_gen = objective.generator_loss(None, D(fake))
    g_opt.zero_grad()
    loss_gen.backward(inputs=list(G.parameters()), retain_graph=True)
    logs = apply_advas(lambda x: objective.adversary_loss(D(real), D(x)) + 10 * gradient_penalty(D, real, x),
                       fake, G, D, mode="hvp")
    g_opt.step()
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from equilibria.autodiff import Buffers, CompositeNorms, FrozenKinks, RandomState
from equilibria.core.components import Component, GeneratorStep
from equilibria.core.method import BuildContext, Contribution, Method
from equilibria.core.objectives import Objective, untruncated
from equilibria.core.parallel import SINGLE, DataParallel
from equilibria.core.penalties import Penalty
from equilibria.core.sections import Bool, ConfigError, Float, Int, MethodConfig, option

if TYPE_CHECKING:
    from equilibria.core.trainer import Trainer

MODES = ("auto", "exact", "hvp")
DIFFERENCES = ("forward", "central")
ESTIMATORS = ("biased", "unbiased")
AUTO_AGREEMENT = 0.99  # cosine between the exact and hvp results above which auto keeps hvp
# eps_scale = EPS_FACTOR[difference] * machine_epsilon ** EPS_POWER[difference]: calibrated on the E.1
# networks with the gradient penalty (docs/ADVAS.md), smaller than the textbook sqrt / cube root
# because grad_x L_adv is strongly curved along v.
EPS_POWER = {"forward": 1 / 2, "central": 1 / 3}
EPS_FACTOR = {"forward": 0.03, "central": 0.02}


class AdvAsGradient(NamedTuple):
    """g_AdvAs = grad_theta r (one tensor per generator parameter), r, and the mode that computed it."""

    gradient: list[Tensor]
    r: Tensor
    mode: str


# -- helpers ---------------------------------------------------------------------------------------
def _check(option: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"advas.{option}: got {value!r}; allowed: {', '.join(allowed)}")


def _norm(tensors: list[Tensor]) -> Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


def _cosine(a: Tensor, b: Tensor, parallel: DataParallel = SINGLE) -> float:
    """The cosine of the global vectors whose shares (one per process) are ``a`` and ``b``."""
    sums = torch.stack([(a * b).sum(), a.pow(2).sum(), b.pow(2).sum()])
    parallel.average([sums])
    return float(sums[0] / (sums[1] * sums[2]).sqrt().clamp_min(torch.finfo(a.dtype).tiny))


def default_eps_scale(dtype: torch.dtype, difference: str = "forward") -> float:
    """c in eps = c (1 + ||phi||) / ||v||: EPS_FACTOR * macheps ** (1/2 forward, 1/3 central)."""
    _check("difference", difference, DIFFERENCES)
    return EPS_FACTOR[difference] * torch.finfo(dtype).eps ** EPS_POWER[difference]


# -- the biased estimator (Eq. 10) -----------------------------------------------------------------
class _Evaluation:
    """L_adv at the given discriminator parameters, each time from the same random state and buffers."""

    def __init__(self, adversary_loss: Callable[[Tensor], Tensor], discriminator: nn.Module, x: Tensor,
                 parallel: DataParallel = SINGLE):
        self.adversary_loss = adversary_loss
        self.parallel = parallel
        self.discriminator = discriminator
        self.named = [(n, p) for n, p in discriminator.named_parameters() if p.requires_grad]
        self.phi = [p for _, p in self.named]
        self.x = x
        self.random = RandomState(x.device)
        self.buffers = Buffers(discriminator)

    def __call__(self, params: list[Tensor] | None = None) -> Tensor:
        self.random.restore()
        self.buffers.restore()
        if params is None:
            return self.adversary_loss(self.x)
        swapped = {f"discriminator.{name}": p for (name, _), p in zip(self.named, params)}
        return torch.func.functional_call(_Closure(self.discriminator), swapped, (self.adversary_loss, self.x))


class _Closure(nn.Module):
    """Runs a function of x while ``functional_call`` swaps the discriminator's parameters."""

    def __init__(self, discriminator: nn.Module):
        super().__init__()
        self.discriminator = discriminator

    def forward(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        return fn(x)


def _grads(output: Tensor, inputs: list[Tensor], **kwargs: Any) -> list[Tensor]:
    return list(torch.autograd.grad(output, inputs, allow_unused=True, materialize_grads=True, **kwargs))


def _exact(evaluate: _Evaluation) -> tuple[Tensor, Tensor, Tensor]:
    """(L_adv, r, grad_x r) by double backward, the norm layers composite.

    Under data parallelism (W processes, L_adv the mean of theirs): v = mean_k v_k, and this share's
    grad_x r = (2 / W) (d v_k / d x_k)^T v, the gradient of (2 / W) v_k . v with v held fixed."""
    with CompositeNorms():
        loss = evaluate()
    v = _grads(loss, evaluate.phi, create_graph=True)
    world = evaluate.parallel.world
    if world == 1:
        r = torch.stack([t.pow(2).sum() for t in v]).sum()
        (grad_x,) = _grads(r, [evaluate.x])
        return loss.detach(), r.detach(), grad_x
    v_global = [t.detach().clone() for t in v]
    evaluate.parallel.average(v_global)
    r = torch.stack([t.pow(2).sum() for t in v_global]).sum()
    (grad_x,) = _grads(torch.stack([(t * g).sum() for t, g in zip(v, v_global)]).sum() * (2 / world), [evaluate.x])
    return loss.detach(), r, grad_x


def _hvp(evaluate: _Evaluation, difference: str, eps_scale: float | None) -> tuple[Tensor, Tensor, Tensor]:
    """(L_adv, r, grad_x r) by a finite difference of grad_x L_adv along v, the kinks frozen."""
    kinks = FrozenKinks()
    with kinks.recording():
        loss = evaluate()
    *v, grad_x0 = _grads(loss, [*evaluate.phi, evaluate.x])
    evaluate.parallel.average(v)  # data parallelism: the global v; this share's grad_x r gets 1 / W below
    v_norm = _norm(v)
    r = v_norm.square()
    if v_norm == 0:
        return loss.detach(), r, torch.zeros_like(grad_x0)
    scale = default_eps_scale(grad_x0.dtype, difference) if eps_scale is None else eps_scale
    eps = scale * (1 + float(_norm([p.detach() for p in evaluate.phi]))) / float(v_norm)

    def grad_x_at(step: float) -> Tensor:
        params = torch._foreach_add([p.detach() for p in evaluate.phi], v, alpha=step)
        with kinks.replaying():
            perturbed = evaluate(params)
        return _grads(perturbed, [evaluate.x])[0]

    share = 1 / evaluate.parallel.world
    if difference == "central":
        return loss.detach(), r, (grad_x_at(eps) - grad_x_at(-eps)) * (share / eps)
    return loss.detach(), r, (grad_x_at(eps) - grad_x0) * (2 * share / eps)


def _fake_gradient(evaluate: _Evaluation, mode: str, difference: str, eps_scale: float | None
                   ) -> tuple[str, Tensor, Tensor, Tensor]:
    """(mode used, L_adv, r, grad_x r); ``auto`` compares both modes (see the module docstring)."""
    if mode == "exact":
        return ("exact", *_exact(evaluate))
    if mode == "hvp":
        return ("hvp", *_hvp(evaluate, difference, eps_scale))
    try:
        exact = _exact(evaluate)
    except (RuntimeError, NotImplementedError) as error:
        warnings.warn(f"advas.mode=auto: exact double backward failed ({error}); using hvp", stacklevel=3)
        return ("hvp", *_hvp(evaluate, difference, eps_scale))
    approximate = _hvp(evaluate, difference, eps_scale)
    cosine = _cosine(exact[2], approximate[2], evaluate.parallel)
    if cosine >= AUTO_AGREEMENT:
        return ("hvp", *approximate)
    other = _hvp(evaluate, DIFFERENCES[1 - DIFFERENCES.index(difference)], None)
    if _cosine(other[2], approximate[2], evaluate.parallel) >= AUTO_AGREEMENT:
        warnings.warn(f"advas.mode=auto: exact double backward disagrees with both finite differences (cosine "
                      f"{cosine:.4f}): some operation has wrong higher derivatives; using hvp", stacklevel=3)
        return ("hvp", *approximate)
    warnings.warn(f"advas.mode=auto: the hvp and exact gradients disagree (cosine {cosine:.4f} < {AUTO_AGREEMENT}); "
                  "using exact", stacklevel=3)
    return ("exact", *exact)


def _parameters(module: nn.Module) -> list[Tensor]:
    return [p for p in module.parameters() if p.requires_grad]


def _samples(fake: Tensor) -> Tensor:
    """A leaf copy of the generator's samples to differentiate in, after checking they have a graph."""
    if not fake.requires_grad:
        raise ValueError("advas: the generator's samples have no graph; pass fake = G(z) undetached (and "
                         "retain_graph=True in L_gen's backward)")
    return fake.detach().requires_grad_()


def _through_generator(fake: Tensor, grad_x: Tensor, generator: nn.Module) -> list[Tensor]:
    return _grads(fake, _parameters(generator), grad_outputs=grad_x, retain_graph=True)


def _evaluated_fake_gradient(adversary_loss: Callable[[Tensor], Tensor], fake: Tensor, discriminator: nn.Module,
                             mode: str, difference: str, eps_scale: float | None,
                             parallel: DataParallel = SINGLE) -> tuple[Any, tuple]:
    """Check the options, then (mode, L_adv, r, grad_x r) with the discriminator's buffers restored."""
    _check("mode", mode, MODES)
    _check("difference", difference, DIFFERENCES)
    evaluate = _Evaluation(adversary_loss, discriminator, _samples(fake), parallel)
    try:
        return evaluate, _fake_gradient(evaluate, mode, difference, eps_scale)
    finally:
        evaluate.buffers.restore()


def advas_gradient(adversary_loss: Callable[[Tensor], Tensor], fake: Tensor, generator: nn.Module,
                   discriminator: nn.Module, *, mode: str = "auto", difference: str = "forward",
                   eps_scale: float | None = None, parallel: DataParallel = SINGLE) -> AdvAsGradient:
    """g_AdvAs = grad_theta r~ with r~ = ||grad_phi L~_adv||^2 on one minibatch (Eq. 10, 35).

    ``adversary_loss(x)`` is L_adv on the generator's samples x (real batch, penalties and their
    random draws inside); ``fake`` = G(z) with its graph. The discriminator's parameters, buffers
    and the random state after the call are as after one evaluation of L_adv. ``mode``:
    exact, hvp or auto (see the module docstring); pass ``result.mode`` next time to keep auto's
    choice without checking again. Under data parallelism (``parallel``), ``fake`` is this process's
    share, r is the global batch's (v averaged over the processes) and the gradient is this share's
    contribution to the global g_AdvAs, which is their sum (``add_advas_gradient`` adds them).
    """
    evaluate, (mode, _, r, grad_x) = _evaluated_fake_gradient(adversary_loss, fake, discriminator, mode,
                                                              difference, eps_scale, parallel)
    return AdvAsGradient(_through_generator(fake, grad_x, generator), r, mode)


# -- the unbiased estimator (Appendix B) -----------------------------------------------------------
PerSampleLoss = Callable[[dict[str, Tensor], Tensor, Tensor, Tensor], Tensor]


def per_sample_adversary_loss(discriminator: nn.Module, objective: Objective, penalties: Sequence[Penalty] = ()
                              ) -> PerSampleLoss:
    """g(phi, x1, x2, u): L_adv's term for one pair of a generated sample x1 and a real sample x2 (Eq. 12).

    The objectives and penalties average over the batch, so L_adv = mean_n g(phi, x1_n, x2_n, u_n)
    pairs the n-th generated and real samples; u_n ~ U[0, 1) is the gradient penalty's
    interpolation weight (x_hat = u x2 + (1 - u) x1). Each penalty contributes its per-sample form.
    Written for ``torch.func`` (functional_call, grad), so that ``vmap`` gives per-sample gradients.
    """

    def score(params: dict[str, Tensor], x: Tensor) -> Tensor:
        return torch.func.functional_call(discriminator, params, (x.unsqueeze(0),)).sum()

    def loss(params: dict[str, Tensor], fake: Tensor, real: Tensor, u: Tensor) -> Tensor:
        total = objective.adversary_loss(score(params, real).reshape(1), score(params, fake).reshape(1))
        for penalty in penalties:
            total = total + penalty.per_sample(score, params, fake, real, u)
        return total

    return loss


def _per_sample_terms(per_sample_loss: PerSampleLoss, discriminator: nn.Module, fake: Tensor, real: Tensor,
                      u: Tensor, chunk_size: int | None) -> tuple[Tensor, Tensor, Tensor]:
    """(g_n, ||grad_phi g_n||^2, grad_x1 ||grad_phi g_n||^2) for every n, exactly (vmap of torch.func.grad)."""
    params = {n: p.detach() for n, p in discriminator.named_parameters() if p.requires_grad}

    def squared_norm(x1: Tensor, x2: Tensor, u_n: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        grads, value = torch.func.grad_and_value(per_sample_loss)(params, x1, x2, u_n)
        s = sum(g.pow(2).sum() for g in grads.values())
        return s, (s, value)

    def one(x1: Tensor, x2: Tensor, u_n: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        grad_x1, (s, value) = torch.func.grad(squared_norm, has_aux=True)(x1, x2, u_n)
        return value, s, grad_x1

    with CompositeNorms():
        return torch.func.vmap(one, chunk_size=chunk_size)(fake, real, u)


def advas_gradient_unbiased(adversary_loss: Callable[[Tensor], Tensor], per_sample_loss: PerSampleLoss,
                            real: Tensor, fake: Tensor, generator: nn.Module, discriminator: nn.Module, *,
                            mode: str = "auto", difference: str = "forward", eps_scale: float | None = None,
                            chunk_size: int | None = 8, parallel: DataParallel = SINGLE) -> AdvAsGradient:
    """g_AdvAs from the unbiased estimate of r (Appendix B, Eq. 15-18 with the variance's sign corrected):

        r^ = (N^2 ||g_bar||^2 - sum_n ||g_n||^2) / (N (N - 1)),   g_n = grad_phi g(phi, x1_n, x2_n)

    (Eq. 15 reads E[x]^2 = Var x + E[x^2]; it is E[x^2] - Var x.) The first term is N / (N - 1)
    times the biased estimate, computed in ``mode``; the per-sample part exactly with ``vmap``
    over ``torch.func.grad``, ``chunk_size`` samples at a time (8: faster on CPU than a whole batch of
    64 at once, and bounded memory). ``adversary_loss`` must equal the mean of ``per_sample_loss``
    over the pairs (fake_n, real_n), with u_n the first uniform draws of L_adv's random state (the
    gradient penalty's): checked on every call.
    """
    n = fake.shape[0]
    if n < 2 or real.shape[0] != n:
        raise ValueError(f"advas.estimator=unbiased: needs equal real and generated batches of at least 2 samples "
                         f"to pair; got {real.shape[0]} real and {n} generated")
    coupled = [type(m).__name__ for m in discriminator.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    if coupled:
        raise ValueError(f"advas.estimator=unbiased: the discriminator's {coupled[0]} couples the samples of a batch, "
                         "so L_adv has no per-sample terms; allowed: layers that treat samples independently")
    evaluate, (mode, loss, r_biased, grad_x) = _evaluated_fake_gradient(adversary_loss, fake, discriminator, mode,
                                                                         difference, eps_scale, parallel)
    after = RandomState(fake.device)
    evaluate.random.restore()
    u = parallel.draw(torch.rand, n, device=fake.device, dtype=fake.dtype)  # the gradient penalty's first draws
    after.restore()
    values, squares, grad_squares = _per_sample_terms(per_sample_loss, discriminator, fake.detach(), real.detach(),
                                                      u, chunk_size)
    if not torch.allclose(values.mean(), loss, rtol=0, atol=1e-4 * float(values.abs().mean()) + 1e-6):
        raise ValueError(f"advas.estimator=unbiased: the per-sample losses average to {float(values.mean()):.6g} but "
                         f"L_adv is {float(loss):.6g}; L_adv has terms without a per-sample form (allowed: the "
                         "objective and the penalties)")
    total = squares.sum().reshape(1)
    parallel.average([total])  # the mean over processes of their sums; times the processes: the global sum
    n, total = n * parallel.world, total[0] * parallel.world
    r = (n * r_biased - total / n) / (n - 1)
    grad_x = (n * grad_x - grad_squares / n) / (n - 1)
    return AdvAsGradient(_through_generator(fake, grad_x, generator), r.detach(), mode)


# -- lambda and the generator's gradient -----------------------------------------------------------
def advas_lambda(g_orig: list[Tensor], g_advas: list[Tensor]) -> Tensor:
    """lambda = min(1, ||g_orig|| / ||g_AdvAs||) (Eq. 11); 1 when g_AdvAs is zero."""
    orig, advas = _norm(g_orig), _norm(g_advas)
    return torch.where(advas > 0, (orig / advas.clamp_min(torch.finfo(advas.dtype).tiny)).clamp(max=1.0),
                       torch.ones_like(advas))


def add_advas_gradient(generator: nn.Module, advas: AdvAsGradient, *, lam: float | None = None,
                       r_only: bool = False, parallel: DataParallel = SINGLE) -> dict[str, Any]:
    """.grad += lambda g_AdvAs (Eq. 8), or .grad = lambda g_AdvAs with ``r_only`` (Appendix C.3); the logs.

    ``lam`` None: the heuristic of Eq. 11, from the gradient already in ``.grad`` (g_orig). Under data
    parallelism both are made global first (g_orig averaged, g_AdvAs's shares summed), so that lambda
    uses the global norms and every process holds the same gradient.
    """
    params = _parameters(generator)
    g_orig = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    g_advas = advas.gradient
    if parallel.world > 1:
        g_advas = [g.clone() for g in g_advas]
        parallel.average([*g_orig, *g_advas])
        torch._foreach_mul_(g_advas, float(parallel.world))
    weight = advas_lambda(g_orig, g_advas) if lam is None else torch.tensor(float(lam))
    logs = {"advas/r": advas.r, "advas/lambda": weight, "advas/g_orig_norm": _norm(g_orig),
            "advas/g_advas_norm": _norm(g_advas), "advas/exact": float(advas.mode == "exact")}
    scaled = torch._foreach_mul(g_advas, float(weight))
    for p, orig, step in zip(params, g_orig, scaled):
        p.grad = step if r_only else orig + step
    return logs


def apply_advas(adversary_loss: Callable[[Tensor], Tensor], fake: Tensor, generator: nn.Module,
                discriminator: nn.Module, *, lam: float | None = None, r_only: bool = False, mode: str = "auto",
                difference: str = "forward", eps_scale: float | None = None) -> dict[str, Any]:
    """AdvAs in one call, after L_gen's backward: ``advas_gradient`` then ``add_advas_gradient``.

    Returns the logs (``advas/r``, ``advas/lambda``, ``advas/g_orig_norm``, ``advas/g_advas_norm``,
    ``advas/exact``) and ``advas/mode``, the mode used (pass it as ``mode`` to keep auto's choice).
    """
    advas = advas_gradient(adversary_loss, fake, generator, discriminator, mode=mode, difference=difference,
                           eps_scale=eps_scale)
    return {**add_advas_gradient(generator, advas, lam=lam, r_only=r_only), "advas/mode": advas.mode}


# -- the trainer's component ------------------------------------------------------------------------
class AdvAs(Component):
    """AdvAs in the trainer: adds lambda g_AdvAs to the generator's gradient before its step.

    r is computed on the generator step's samples and the last real batch the adversary saw, with
    L_adv = ``trainer.adversary_loss`` (penalties and other components' terms included; the hinge
    untruncated unless ``hinge_truncation``). The adversary's update is untouched (Section 4.1).
    The generator's samples may outnumber the real batch (``generator_batch_size``): each term of the
    biased estimate is a mean over its own samples. The unbiased estimator pairs them, and takes the
    per-sample forms of the trainer's penalties.
    """

    name = "advas"

    def __init__(self, *, lam: float | None = None, mode: str = "auto", difference: str = "forward",
                 eps_scale: float | None = None, estimator: str = "biased", hinge_truncation: bool = False,
                 r_only: bool = False, chunk_size: int | None = 8):
        _check("mode", mode, MODES)
        _check("difference", difference, DIFFERENCES)
        _check("estimator", estimator, ESTIMATORS)
        if lam is not None and not lam >= 0:
            raise ValueError(f"lam: got {lam!r}; allowed: a number >= 0, or None for the heuristic of Eq. 11")
        if eps_scale is not None and not eps_scale > 0:
            raise ValueError(f"eps_scale: got {eps_scale!r}; allowed: a number > 0, or None for the default")
        self.lam, self.mode, self.difference, self.eps_scale = lam, mode, difference, eps_scale
        self.estimator, self.hinge_truncation, self.r_only = estimator, hinge_truncation, r_only
        self.chunk_size = chunk_size

    def adjust_generator_gradient(self, trainer: Trainer, step: GeneratorStep) -> dict[str, Any]:
        objective = trainer.objective if self.hinge_truncation else untruncated(trainer.objective)

        def adversary_loss(x: Tensor) -> Tensor:
            return trainer.adversary_loss(step.real, x, objective=objective)[0]

        options = {"mode": self.mode, "difference": self.difference, "eps_scale": self.eps_scale,
                   "parallel": trainer.parallel}
        if self.estimator == "biased":
            advas = advas_gradient(adversary_loss, step.fake, trainer.generator, trainer.discriminator, **options)
        else:
            if step.fake.shape[0] != step.real.shape[0]:
                raise ValueError(f"advas estimator 'unbiased': got {step.fake.shape[0]} generated samples against "
                                 f"a real batch of {step.real.shape[0]}; allowed: equal numbers (Appendix B pairs "
                                 "them), or the biased estimator")
            per_sample = per_sample_adversary_loss(trainer.discriminator, objective, trainer.penalties)
            advas = advas_gradient_unbiased(adversary_loss, per_sample, step.real, step.fake, trainer.generator,
                                            trainer.discriminator, chunk_size=self.chunk_size, **options)
        self.mode = advas.mode
        step.gradient_is_global = trainer.parallel.world > 1  # add_advas_gradient averaged it
        return add_advas_gradient(trainer.generator, advas, lam=self.lam, r_only=self.r_only,
                                  parallel=trainer.parallel)

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check("mode", state["mode"], MODES)
        self.mode = state["mode"]


# -- the method: config section ``advas`` ---------------------------------------------------------------
class AdvAsConfig(MethodConfig):
    """``advas``: the Adversary's Assistant (docs/ADVAS.md)."""

    lam: Float | None = option(None, "fixed lambda of Eq. 8; null: the heuristic of Eq. 11", ge=0.0)
    mode: Literal[MODES] = option("auto", "how grad_theta r is computed: exact double backward, hvp finite "
                                  "difference, or auto (both once, hvp if they agree)")
    difference: Literal[DIFFERENCES] = option("forward", "the hvp mode's finite difference")
    eps_scale: Float | None = option(None, "hvp step scale c in eps = c (1 + ||phi||) / ||v||; null: by dtype",
                                     gt=0.0)
    estimator: Literal[ESTIMATORS] = option("biased", "r from Eq. 10 (biased) or Appendix B (unbiased)")
    hinge_truncation: Bool = option(False, "compute r with the hinge's truncation (Section 5: without)")
    r_only: Bool = option(False, "the generator minimises lambda r alone (Appendix C.3)")
    chunk_size: Int | None = option(8, "unbiased estimator: samples per vmap call; null: the whole batch", ge=1)


def _check_config(section: AdvAsConfig, config: Any, objective: Objective) -> None:
    if section.enabled and config.train.update == "joint":
        raise ConfigError("config key 'advas.enabled': got true with train.update=joint; allowed: false (AdvAs "
                          "changes the generator's own step, which a joint update does not take)")
    train = config.train
    if not section.enabled or train.generator_batch_size in (None, train.batch_size):
        return
    if section.estimator == "unbiased":
        raise ConfigError(f"config key 'advas.estimator': got 'unbiased' with train.generator_batch_size="
                          f"{train.generator_batch_size} and train.batch_size={train.batch_size}; allowed: biased "
                          "(Appendix B's estimator pairs each generated sample with a real one)")
    if config.penalties.gradient_penalty > 0:
        raise ConfigError(f"config key 'train.generator_batch_size': got {train.generator_batch_size} with "
                          f"advas.enabled=true and penalties.gradient_penalty={config.penalties.gradient_penalty:g}; "
                          f"allowed: null or train.batch_size ({train.batch_size}): r's L_adv would interpolate "
                          "pairs of a real and a generated sample")


def _build(section: AdvAsConfig, context: BuildContext) -> Contribution:
    return Contribution(components=[AdvAs(**section.model_dump(exclude={"enabled"}))])


METHOD = Method("advas", AdvAsConfig, _build, check=_check_config)
