"""One GAN training iteration: alternating, simultaneous or joint updates of both players.

Alternating (AdvAs Algorithm 1): n_adv adversary updates on fresh batches, then one generator
update (on ``generator_batch_size`` samples, by default the batch size). Simultaneous: both
players' gradients from one batch, then both optimizers step. Joint: one zero-sum loss
f = -L_adv (generator minimises, adversary maximises) handed to an optimizer that moves both
players at once (CGD/ACGD).

L_adv = objective's adversary loss + the weighted penalty terms + the components' terms.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from equilibria.core.components import Component, GeneratorStep
from equilibria.core.ema import EMA
from equilibria.core.finite import FiniteMonitor, NonFiniteError, player_of
from equilibria.core.objectives import Objective, untruncated
from equilibria.core.parallel import SINGLE, DataParallel
from equilibria.core.penalties import Penalty, clip_weights


UPDATES = ("alternating", "simultaneous", "joint")
NONFINITE = ("stop", "skip")
PRECISIONS = ("fp32", "bf16", "fp16")


class Batches(Protocol):
    def next(self) -> Tensor: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class JointOptimizer(Protocol):
    """Moves both players from one zero-sum loss: the generator minimises it, the adversary maximises."""

    def step(self, loss: Tensor) -> dict[str, Any]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def grad_norm(parameters: Sequence[Tensor]) -> Tensor:
    """The 2-norm of all the parameters' gradients together."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def output_statistics(d_real: Tensor, d_fake: Tensor) -> dict[str, Tensor]:
    """Mean and standard deviation of the adversary's raw outputs on real and generated data (VRAL Fig. 3)."""
    d_real, d_fake = d_real.detach(), d_fake.detach()
    return {"d_real": d_real.mean(), "d_fake": d_fake.mean(), "d_real_std": d_real.std(), "d_fake_std": d_fake.std()}


def sample_gradient_norm(loss: Tensor, samples: Tensor) -> Tensor:
    """Mean over samples of ||grad_x l_i||, l_i the per-sample terms of the batch-mean ``loss`` (VRAL Fig. 4)."""
    (grad,) = torch.autograd.grad(loss * samples.shape[0], samples, retain_graph=True)
    return grad.flatten(1).norm(dim=1).mean()


def _compiled(module: nn.Module) -> nn.Module:
    """``torch.compile(module)``, sharing its parameters.

    Its graphs may be backpropagated through more than once (the trainer retains the generator
    step's graph for components), which torch.compile's donated buffers forbid, so those are turned
    off. Every compiled module runs through one wrapper frame, whose graphs (each network under each
    grad mode and autocast state) would pass dynamo's default limit of 8 and silently run eager, so
    the limit is raised to 64. Both settings are process-wide."""
    import torch._dynamo.config
    import torch._functorch.config

    torch._functorch.config.donated_buffer = False
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    return torch.compile(module)


class Trainer:
    """Holds the two players, their optimizers and the components, and runs iterations."""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        objective: Objective,
        batches: Batches,
        *,
        g_optimizer: torch.optim.Optimizer | None = None,
        d_optimizer: torch.optim.Optimizer | None = None,
        joint_optimizer: JointOptimizer | None = None,
        batch_size: int,
        generator_batch_size: int | None = None,
        n_adv: int = 1,
        update: str = "alternating",
        penalties: Sequence[Penalty] = (),
        weight_clip: float = 0.0,
        components: Sequence[Component] = (),
        ema: float = 0.0,
        nonfinite: str = "stop",
        max_skips: int = 10,
        parallel: DataParallel = SINGLE,
        precision: str = "fp32",
        compile: bool = False,
        channels_last: bool = False,
    ):
        if update not in UPDATES:
            raise ValueError(f"update: got {update!r}; allowed: {', '.join(UPDATES)}")
        if (update == "joint") != (joint_optimizer is not None):
            raise ValueError("update: 'joint' needs a joint optimizer, and a joint optimizer needs 'joint'")
        if update != "joint" and (g_optimizer is None or d_optimizer is None):
            raise ValueError(f"update={update} needs an optimizer for each player")
        if n_adv < 0 or (update != "alternating" and n_adv != 1):
            raise ValueError(f"n_adv: got {n_adv}; allowed: >= 0 for alternating updates (0: the adversary stays "
                             "at its initialisation), 1 otherwise")
        names = [p.name for p in penalties]
        if len(set(names)) != len(names):
            raise ValueError(f"penalties: got {names}; allowed: each penalty once")
        if update == "joint" and objective.value is None:
            raise ValueError(f"objective {objective.name!r} has no zero-sum value game, which a joint update plays")
        if nonfinite not in NONFINITE:
            raise ValueError(f"nonfinite: got {nonfinite!r}; allowed: {', '.join(NONFINITE)}")
        if nonfinite == "skip" and update == "joint":
            raise ValueError("nonfinite='skip' needs an optimizer per player; a joint optimizer changes its own state "
                             "inside its step, which a skip cannot undo")
        if precision not in PRECISIONS:
            raise ValueError(f"precision: got {precision!r}; allowed: {', '.join(PRECISIONS)}")
        if compile and update == "joint":
            raise ValueError("compile: a joint update differentiates twice through both networks, which "
                             "torch.compile does not support")
        if max_skips < 1:
            raise ValueError(f"max_skips: got {max_skips}; allowed: an integer >= 1")
        generator_batch_size = batch_size if generator_batch_size is None else generator_batch_size
        if generator_batch_size < 1:
            raise ValueError(f"generator_batch_size: got {generator_batch_size}; allowed: an integer >= 1, or None "
                             "(batch_size)")
        if generator_batch_size != batch_size and (update != "alternating" or objective.generator_uses_real):
            raise ValueError(f"generator_batch_size: got {generator_batch_size} (batch_size {batch_size}) with "
                             f"update={update} and objective {objective.name!r}; allowed: batch_size, unless the "
                             "updates alternate and the generator's loss reads generated samples alone (a "
                             "simultaneous or joint update and a relativistic loss pair them with the real batch)")
        self.generator = generator
        self.discriminator = discriminator
        self.objective = objective
        self.batches = batches
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.joint_optimizer = joint_optimizer
        self.batch_size = batch_size
        self.generator_batch_size = generator_batch_size
        self.n_adv = n_adv
        self.update = update
        self.penalties = list(penalties)
        self.weight_clip = weight_clip
        self.components = list(components)
        self.ema = EMA(generator, ema) if ema > 0 else None
        self.nonfinite, self.max_skips = nonfinite, max_skips
        self.parallel = parallel
        self.precision = precision
        self.channels_last = channels_last
        if channels_last:  # the convolution weights, the methods' networks' too; the image batches follow in real_batch
            for module in [generator, discriminator, *(m for c in self.components for m in c.modules().values())]:
                module.to(memory_format=torch.channels_last)
        # The players' forward passes of the objective, which are differentiated once, compiled; the
        # penalties, AdvAs's r and the methods call the modules themselves, eager, since they
        # differentiate twice (see _compiled).
        self._generator_forward = _compiled(generator) if compile else generator
        self._discriminator_forward = _compiled(discriminator) if compile else discriminator
        self.monitor = FiniteMonitor()
        self.skips = {"total": 0, "in_a_row": 0}
        self._skipped: list[tuple[str, float]] = []  # (quantity, value) of this iteration's skipped updates
        self.step = 0
        self._g_params = list(generator.parameters())
        self._d_params = list(discriminator.parameters())
        self.device = self._g_params[0].device
        # fp16: a loss scaler per player, since their losses and gradients differ by orders of magnitude
        self.scalers = ({player: torch.amp.GradScaler(self.device.type) for player in ("adversary", "generator")}
                        if precision == "fp16" and update != "joint" else {})
        self.overflows = {player: 0 for player in self.scalers}

    # -- pieces a component or a user may call -------------------------------------------------
    def noise(self, n: int) -> Tensor:
        """Latent codes for ``n`` samples of this process (drawn for the global batch: see ``parallel``)."""
        return self.parallel.draw(torch.randn, n, self.generator.latent_dim, device=self.device)

    def _forward(self) -> contextlib.AbstractContextManager:
        """Where the players' forward passes run: bf16 or fp16 autocast with ``precision``. Backward
        passes, penalties, AdvAs, joint (CGD) updates and the methods' own updates stay in fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)

    def _full_precision(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, enabled=False)

    def real_batch(self, last: bool = True) -> tuple[Tensor, Tensor]:
        """The next real batch, raw and as the adversary sees it (after the components' transforms).
        ``last``: the iteration's last batch, whose transforms may keep a graph for ``after_iteration``;
        the earlier critic batches are transformed without autograd."""
        raw = self.batches.next()
        if self.channels_last and raw.dim() == 4:
            raw = raw.contiguous(memory_format=torch.channels_last)
        real = raw
        with contextlib.nullcontext() if last else torch.no_grad():
            for component in self.components:
                real = component.transform_real(real)
        return raw, real

    def adversary_loss(self, real: Tensor, fake: Tensor, d_real: Tensor | None = None,
                       d_fake: Tensor | None = None, *, objective: Objective | None = None
                       ) -> tuple[Tensor, dict[str, Tensor]]:
        """L_adv(theta, phi) on one batch, with its parts; ``fake`` keeps its graph if it has one."""
        d_real = self.discriminator(real) if d_real is None else d_real
        d_fake = self.discriminator(fake) if d_fake is None else d_fake
        parts = {"objective": (objective or self.objective).adversary_loss(d_real, d_fake)}
        with self._full_precision():  # a gradient norm in bf16 keeps about 3 digits
            for penalty in self.penalties:
                parts[penalty.name] = penalty(self.discriminator, real.float(), fake.float(), self.parallel)
        for component in self.components:
            parts.update(component.adversary_terms(self, real, fake, d_real, d_fake))
        total = parts["objective"] if len(parts) == 1 else torch.stack(list(parts.values())).sum()
        return total, parts

    # -- one iteration -----------------------------------------------------------------------------
    def train_step(self, diagnostics: bool = False) -> dict[str, Any]:
        """One iteration; ``diagnostics`` adds output statistics and the gradient norm at generated
        samples (cheap, not free). Its scalars are recorded by ``monitor`` (see ``check_finite``)."""
        self._skipped = []
        if self.update == "alternating":
            if self.n_adv == 0:  # a frozen adversary: the generator's step still sees a real batch
                (raw, real), logs = self.real_batch(), {}
            for i in range(self.n_adv):
                raw, real, logs = self._adversary_update(diagnostics, last=i == self.n_adv - 1)
            logs.update(self._generator_update(real, diagnostics))
        else:
            raw, real = self.real_batch()
            logs = self._joint_update(real) if self.update == "joint" else self._simultaneous_update(real, diagnostics)
        for component in self.components:
            logs.update(component.after_iteration(self, raw))
        if self.ema is not None:
            self.ema.update(self.generator)
        self.step += 1
        logs = {key: value.detach() if isinstance(value, Tensor) else value for key, value in logs.items()}
        for player, count in self.overflows.items():  # dropped fp16 updates, the run's total
            logs[f"fp16/overflows_{'adv' if player == 'adversary' else 'gen'}"] = float(count)
        self._count_skips(logs)
        self.monitor.record(self.step, logs)
        return logs

    def check_finite(self, parameters: bool = False) -> None:
        """Raise ``NonFiniteError`` if a quantity of an iteration since the last call was NaN or infinite;
        with ``parameters``, also if a parameter of the players or of a method's networks is (checked
        before every checkpoint: an optimizer step can overflow after its iteration's quantities)."""
        self.monitor.check()
        if not parameters:
            return
        groups = {"generator": self.generator, "adversary": self.discriminator}
        groups.update({f"{c.name}/{name}": module for c in self.components for name, module in c.modules().items()})
        for owner, module in groups.items():
            params = [p.detach() for p in module.parameters()]
            if params:
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(params)))
                if not torch.isfinite(norm):
                    raise NonFiniteError(self.step, f"{owner} parameters", float(norm))

    def _outputs(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, dict[str, Any]]:
        d_real, d_fake = self._discriminator_forward(real).float(), self._discriminator_forward(fake).float()
        logs: dict[str, Any] = {}
        for component in self.components:
            logs.update(component.update_before_adversary(self, real, fake.detach(), d_real.detach(),
                                                          d_fake.detach()))
        return d_real, d_fake, logs

    def _optimizer(self, player: str) -> torch.optim.Optimizer:
        return self.d_optimizer if player == "adversary" else self.g_optimizer

    def _backward(self, player: str, loss: Tensor, params: list[Tensor], retain_graph: bool = False) -> bool:
        """The gradient of ``loss`` into the player's ``.grad``; whether it is already global.

        In fp16 the loss is multiplied by the player's loss scale first; the scaled gradient is
        averaged over the processes (so an overflow reaches every process) and then unscaled, so that
        components and logs see the true gradient."""
        scaler = self.scalers.get(player)
        if scaler is None:
            loss.backward(inputs=params, retain_graph=retain_graph)
            return False
        scaler.scale(loss).backward(inputs=params, retain_graph=retain_graph)
        self.parallel.average_gradients(params)
        scaler.unscale_(self._optimizer(player))
        return True

    def _overflowed(self, player: str, loss: Tensor, params: list[Tensor]) -> bool:
        """In fp16: whether the scaled gradient overflowed (finite loss, non-finite gradient, loss scale
        still >= 1); then the update is dropped and the scale halved. A gradient non-finite at a scale
        below 1 is no overflow of the scaling: it goes to the non-finite checks like any other."""
        scaler = self.scalers.get(player)
        if scaler is None or bool(torch.isfinite(grad_norm(params)) | ~torch.isfinite(loss)) \
                or scaler.get_scale() < 1:
            return False
        self.overflows[player] += 1
        self._drop(player)
        return True

    def _drop(self, player: str) -> None:
        """Leave the player unchanged this iteration (its loss scale is backed off if it overflowed)."""
        self._optimizer(player).zero_grad(set_to_none=True)
        if player in self.scalers:
            self.scalers[player].update()

    def _apply(self, player: str, loss: Tensor, norm: Tensor, logs: dict[str, Any]) -> None:
        """The player's optimizer step, unless ``nonfinite='skip'`` drops it (see ``_skip``)."""
        if self._skip(player, loss, norm, logs):
            self._drop(player)
            return
        scaler = self.scalers.get(player)
        if scaler is None:
            self._optimizer(player).step()
        else:
            logs[f"fp16/scale_{'adv' if player == 'adversary' else 'gen'}"] = scaler.get_scale()
            scaler.step(self._optimizer(player))
            scaler.update()
        if player == "adversary" and self.weight_clip > 0:
            clip_weights(self.discriminator, self.weight_clip)

    def _skip(self, player: str, loss: Tensor, norm: Tensor, logs: dict[str, Any]) -> bool:
        """With ``nonfinite='skip'``: whether the player's loss or gradient is non-finite (a device
        synchronisation); then its quantities are left out of ``logs``."""
        if self.nonfinite != "skip" or bool(torch.isfinite(norm) & (torch.isfinite(loss) | (self.parallel.world > 1))):
            return False
        suffix = "adv" if player == "adversary" else "gen"
        loss = loss.detach()
        self._skipped.append((f"loss_{suffix}", float(loss)) if not torch.isfinite(loss)
                             else (f"grad_norm_{suffix}", float(norm)))
        for key in [key for key in logs if player_of(key) == player]:
            del logs[key]
        logs[f"skipped/{player}"] = 1.0
        return True

    def _count_skips(self, logs: dict[str, Any]) -> None:
        """Count the skipped updates (logged as ``skipped``, the run's total) and stop after too many."""
        if self.nonfinite != "skip":
            return
        self.skips["total"] += len(self._skipped)
        self.skips["in_a_row"] = self.skips["in_a_row"] + 1 if self._skipped else 0
        logs["skipped"] = float(self.skips["total"])
        if self.skips["in_a_row"] > self.max_skips:
            quantity, value = self._skipped[-1]
            raise NonFiniteError(self.step, quantity, value, note=f"{self.skips['in_a_row']} iterations in a row "
                                                                   f"skipped, more than max_skips={self.max_skips}")

    def _adversary_update(self, diagnostics: bool, last: bool = True) -> tuple[Tensor, Tensor, dict[str, Any]]:
        raw, real = self.real_batch(last)
        with self._forward():
            with torch.no_grad():
                fake = self._generator_forward(self.noise(real.shape[0])).float()
            d_real, d_fake, logs = self._outputs(real, fake)
            loss, parts = self.adversary_loss(real, fake, d_real, d_fake)
        self.d_optimizer.zero_grad(set_to_none=True)
        if not self._backward("adversary", loss, self._d_params):
            self.parallel.average_gradients(self._d_params)
        logs.update(loss_adv=loss, **{f"adv/{k}": v for k, v in parts.items()})
        if diagnostics:
            logs.update(output_statistics(d_real, d_fake))
        if self._overflowed("adversary", loss, self._d_params):
            return raw, real, logs
        norm = grad_norm(self._d_params)
        logs["grad_norm_adv"] = norm
        self._apply("adversary", loss, norm, logs)
        return raw, real, logs

    def _generator_update(self, real: Tensor, diagnostics: bool) -> dict[str, Any]:
        z = self.noise(self.generator_batch_size)
        with self._forward():
            fake = self._generator_forward(z).float()
            loss = self.objective.generator_loss(self._real_outputs(real), self._discriminator_forward(fake).float())
        logs: dict[str, Any] = {"loss_gen": loss}
        if diagnostics:
            logs["grad_norm_fake"] = sample_gradient_norm(loss, fake)
        self.g_optimizer.zero_grad(set_to_none=True)
        step = GeneratorStep(z, fake, real, loss)
        step.gradient_is_global = self._backward("generator", loss, self._g_params, retain_graph=bool(self.components))
        if self._overflowed("generator", loss, self._g_params):
            return logs
        logs.update(self._adjust_generator_gradient(step))
        if not step.gradient_is_global:
            self.parallel.average_gradients(self._g_params)
        norm = grad_norm(self._g_params)
        logs["grad_norm_gen"] = norm
        self._apply("generator", loss, norm, logs)
        return logs

    def _real_outputs(self, real: Tensor) -> Tensor | None:
        """D on the real batch for a generator loss that compares it (relativistic), else None."""
        if not self.objective.generator_uses_real:
            return None
        with torch.no_grad():
            return self._discriminator_forward(real).float()

    def _adjust_generator_gradient(self, step: GeneratorStep) -> dict[str, Any]:
        logs: dict[str, Any] = {}
        for component in self.components:
            logs.update(component.adjust_generator_gradient(self, step))
        return logs

    def _simultaneous_update(self, real: Tensor, diagnostics: bool) -> dict[str, Any]:
        z = self.noise(real.shape[0])
        with self._forward():
            fake = self._generator_forward(z).float()
            d_real, d_fake, logs = self._outputs(real, fake)
            loss_adv, parts = self.adversary_loss(real, fake, d_real, d_fake)
            loss_gen = self.objective.generator_loss(d_real, d_fake)
        if diagnostics:
            logs["grad_norm_fake"] = sample_gradient_norm(loss_gen, fake)
        self.d_optimizer.zero_grad(set_to_none=True)
        self.g_optimizer.zero_grad(set_to_none=True)
        adversary_is_global = self._backward("adversary", loss_adv, self._d_params, retain_graph=True)
        step = GeneratorStep(z, fake, real, loss_gen)
        step.gradient_is_global = self._backward("generator", loss_gen, self._g_params,
                                                 retain_graph=bool(self.components))
        logs.update(loss_adv=loss_adv, loss_gen=loss_gen, **{f"adv/{k}": v for k, v in parts.items()})
        if diagnostics:
            logs.update(output_statistics(d_real, d_fake))
        adversary_moves = not self._overflowed("adversary", loss_adv, self._d_params)
        if self._overflowed("generator", loss_gen, self._g_params):
            step = None
        else:
            logs.update(self._adjust_generator_gradient(step))
        self.parallel.average_gradients([*([] if adversary_is_global or not adversary_moves else self._d_params),
                                         *([] if step is None or step.gradient_is_global else self._g_params)])
        if adversary_moves:
            logs["grad_norm_adv"] = grad_norm(self._d_params)
            self._apply("adversary", loss_adv, logs["grad_norm_adv"], logs)
        if step is not None:
            logs["grad_norm_gen"] = grad_norm(self._g_params)
            self._apply("generator", loss_gen, logs["grad_norm_gen"], logs)
        return logs

    def _joint_update(self, real: Tensor) -> dict[str, Any]:
        fake = self.generator(self.noise(real.shape[0]))
        d_real, d_fake, logs = self._outputs(real, fake)
        loss_adv, parts = self.adversary_loss(real, fake, d_real, d_fake, objective=untruncated(self.objective))
        try:
            stats = self.joint_optimizer.step(-loss_adv)  # the generator minimises -L_adv, the adversary maximises it
        except FloatingPointError as error:  # the optimizer refused a non-finite update (parameters unchanged)
            raise NonFiniteError(self.step + 1, f"{type(self.joint_optimizer).__name__.lower()}/update", float("nan"),
                                 note=str(error)) from None
        if self.weight_clip > 0:
            clip_weights(self.discriminator, self.weight_clip)
        names = {"grad_norm_min": "grad_norm_gen", "grad_norm_max": "grad_norm_adv"}  # CGD's and ACGD's
        logs.update({names.get(key, key): value for key, value in stats.items()})
        logs.update(loss_adv=loss_adv, loss_gen=-loss_adv, **output_statistics(d_real, d_fake),
                    **{f"adv/{k}": v for k, v in parts.items()})
        return logs

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "batches": self.batches.state_dict(),
            "components": {c.name: c.state_dict() for c in self.components},
            "skips": dict(self.skips),
        }
        if self.scalers:
            state["scalers"] = {player: scaler.state_dict() for player, scaler in self.scalers.items()}
            state["overflows"] = dict(self.overflows)
        for name in ("g_optimizer", "d_optimizer", "joint_optimizer", "ema"):
            if getattr(self, name) is not None:
                state[name] = getattr(self, name).state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.batches.load_state_dict(state["batches"])
        self.skips = dict(state.get("skips", {"total": 0, "in_a_row": 0}))
        for component in self.components:
            component.load_state_dict(state["components"][component.name])
        if self.scalers and "scalers" not in state:
            raise KeyError("checkpoint has no loss-scaler state, but this run trains in fp16")
        for player, scaler in self.scalers.items():
            scaler.load_state_dict(state["scalers"][player])
            self.overflows[player] = state["overflows"][player]
        for name in ("g_optimizer", "d_optimizer", "joint_optimizer", "ema"):
            if getattr(self, name) is not None:
                if name not in state:
                    raise KeyError(f"checkpoint has no {name} state, but this run uses one")
                getattr(self, name).load_state_dict(state[name])
