"""Variance-regularizing adversarial learning (VRAL): meta-discriminators (Eq. 7-13, Algorithm 1)
and VRAL's generator objectives (Eq. 11, 12).

Two meta-discriminators R and F tell a batch of the discriminator's raw outputs on real (on
generated) data from a batch drawn from N(mu_r, 1) (N(mu_f, 1)); the discriminator is trained to
fool them, so its outputs stay distributed as the mixture of Eq. 7 instead of collapsing onto two
points. The paper's meta-discriminator reads the batch as an ordered vector, so it depends on the
order of the samples; the default here sorts the batch first, which makes it permutation-invariant
(it still reads exactly ``batch_size`` values).

A single meta-discriminator M on the slopes |D(x) - D(y)| / ||x - y|| of real-generated pairs
against N(K, sigma) pushes the discriminator towards K-Lipschitz (Eq. 13).

In any loop (after D's forward pass on real and fake)::

    real_meta, fake_meta = MetaDiscriminator(64), MetaDiscriminator(64)
    meta_loss = (meta_discriminator_loss(real_meta, d_real, mean=1.0)
                 + meta_discriminator_loss(fake_meta, d_fake, mean=-1.0))    # their own update
    d_loss = meta_adversary_loss(real_meta, d_real) + meta_adversary_loss(fake_meta, d_fake)  # Eq. 10
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from equilibria.core.components import Component
from equilibria.core.method import BuildContext, Contribution, Method
from equilibria.core.objectives import Objective
from equilibria.core.optimizers import OptimizerConfig, build_optimizer
from equilibria.randomness import draw
from equilibria.core.sections import Bool, ConfigError, Float, Int, MethodConfig, option

ORDERS = ("sorted", "ordered", "single")


class MetaDiscriminator(nn.Module):
    """A two-layer MLP returning logits: of a whole batch of ``batch_size`` scalars (the paper: "comparisons
    are performed batch-wise"), or of each scalar alone (``order="single"``, the author's public code:
    input size 1, so it sees the distribution of single outputs, not the batch).

    VRAL Section 4.1: 28 hidden units and a sigmoid output; the sigmoid is applied inside the
    losses (as softplus) for numerical stability. ``order="sorted"`` sorts the batch first.
    """

    def __init__(self, batch_size: int, hidden: int = 28, order: str = "sorted"):
        super().__init__()
        if order not in ORDERS:
            raise ValueError(f"order: got {order!r}; allowed: {', '.join(ORDERS)}")
        if batch_size < 1 or hidden < 1:
            raise ValueError(f"batch_size {batch_size} and hidden {hidden}; allowed: integers >= 1")
        self.batch_size, self.order = batch_size, order
        inputs = 1 if order == "single" else batch_size
        self.net = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, values: Tensor) -> Tensor:
        """Logits for a batch (m,) -> () or for several batches (k, m) -> (k,); with ``order="single"``
        one logit per value: (m,) -> (m,), (k, m) -> (k, m)."""
        if values.shape[-1] != self.batch_size or values.dim() > 2:
            raise ValueError(f"meta-discriminator input: got shape {tuple(values.shape)}; allowed: "
                             f"({self.batch_size},) or (k, {self.batch_size}) — it reads batches of exactly "
                             f"train.batch_size = {self.batch_size} outputs")
        if self.order == "single":
            return self.net(values.unsqueeze(-1)).squeeze(-1)
        if self.order == "sorted":
            values = values.sort(dim=-1).values
        return self.net(values).squeeze(-1)


def meta_discriminator_loss(meta: MetaDiscriminator, outputs: Tensor, mean: float, std: float = 1.0,
                            draws: int = 1, centred: bool = False) -> Tensor:
    """-log M(y) - log(1 - M(outputs)) with y ~ N(mean, std^2)^m: the meta-discriminator's loss.

    Eq. 8 and 9 (Algorithm 1, lines 5 and 8) as a loss to minimise; ``draws`` Gaussian batches
    are averaged. ``outputs`` are detached: this loss moves only the meta-discriminator. With
    ``centred`` (the mean-subtraction variant, whose outputs are centred by their batch mean) each
    Gaussian batch is centred by its own mean too, so that M compares spread, not location: else it
    would tell the two apart by the mean alone and push the outputs' variance to zero.
    """
    gaussian = draw(torch.randn, draws, meta.batch_size, device=outputs.device, dtype=outputs.dtype) * std + mean
    if centred:
        gaussian = gaussian - gaussian.mean(dim=-1, keepdim=True)
    return F.softplus(-meta(gaussian)).mean() + F.softplus(meta(outputs.detach())).mean()


def meta_adversary_loss(meta: MetaDiscriminator, outputs: Tensor) -> Tensor:
    """-log M(outputs): the discriminator's term for one meta-discriminator (Eq. 10; averaged over the
    outputs when M judges them one at a time)."""
    return F.softplus(-meta(outputs)).mean()


def lipschitz_slopes(d_real: Tensor, d_fake: Tensor, real: Tensor, fake: Tensor) -> Tensor:
    """|D(x_i) - D(y_i)| / ||x_i - y_i|| for the pairs (x_i real, y_i generated) of a batch (Eq. 13)."""
    distance = (real - fake).flatten(1).norm(dim=1).clamp_min(1e-12)
    return (d_real - d_fake).abs() / distance


class VarianceMeta(Component):
    """R and F in the trainer: updated before each adversary step, their terms added to L_adv."""

    name = "meta"

    def __init__(self, real_meta: MetaDiscriminator, fake_meta: MetaDiscriminator, optimizer: torch.optim.Optimizer,
                 *, mu_real: float, mu_fake: float, mean_subtraction: bool = False, weight: float = 1.0):
        self.real_meta, self.fake_meta, self.optimizer = real_meta, fake_meta, optimizer
        self.mu_real, self.mu_fake = mu_real, mu_fake
        self.mean_subtraction, self.weight = mean_subtraction, weight

    def _fake_outputs(self, d_fake: Tensor) -> Tensor:
        """The outputs on generated data in batches of the meta-discriminator's size, each centred by
        its mean in the mean-subtraction variant. AdvAs's r reads L_adv on the generator's step, whose
        samples may be k batches' worth (``train.generator_batch_size``): (k m,) -> (k, m)."""
        if d_fake.numel() != self.fake_meta.batch_size:
            d_fake = d_fake.reshape(-1, self.fake_meta.batch_size)
        return d_fake - d_fake.mean(dim=-1, keepdim=True) if self.mean_subtraction else d_fake

    def update_before_adversary(self, trainer, real, fake, d_real, d_fake) -> dict:
        d_real, d_fake = trainer.parallel.gather(d_real), trainer.parallel.gather(d_fake)  # the global batch
        loss_real = meta_discriminator_loss(self.real_meta, d_real, self.mu_real)
        loss_fake = meta_discriminator_loss(self.fake_meta, self._fake_outputs(d_fake), self.mu_fake,
                                            centred=self.mean_subtraction)
        self.optimizer.zero_grad(set_to_none=True)
        (loss_real + loss_fake).backward()
        self.optimizer.step()
        return {"meta/loss_real": loss_real.detach(), "meta/loss_fake": loss_fake.detach(),
                "meta/std_real": d_real.std(), "meta/std_fake": d_fake.std()}

    def adversary_terms(self, trainer, real, fake, d_real, d_fake) -> dict[str, Tensor]:
        d_real, d_fake = trainer.parallel.gather(d_real), trainer.parallel.gather(d_fake)
        return {"meta_real": self.weight * meta_adversary_loss(self.real_meta, d_real),
                "meta_fake": self.weight * meta_adversary_loss(self.fake_meta, self._fake_outputs(d_fake))}

    def modules(self) -> dict[str, nn.Module]:
        return {"real_meta": self.real_meta, "fake_meta": self.fake_meta}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])


class LipschitzMeta(Component):
    """A single meta-discriminator M on the slopes of real-generated pairs against N(K, sigma) (Eq. 13)."""

    name = "meta_lipschitz"

    def __init__(self, meta: MetaDiscriminator, optimizer: torch.optim.Optimizer, *, k: float = 1.0,
                 sigma: float = 0.1, weight: float = 1.0):
        self.meta, self.optimizer, self.k, self.sigma, self.weight = meta, optimizer, k, sigma, weight

    def update_before_adversary(self, trainer, real, fake, d_real, d_fake) -> dict:
        slopes = trainer.parallel.gather(lipschitz_slopes(d_real, d_fake, real, fake))
        loss = meta_discriminator_loss(self.meta, slopes, self.k, self.sigma)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"meta/loss_lipschitz": loss.detach(), "meta/slope_mean": slopes.mean()}

    def adversary_terms(self, trainer, real, fake, d_real, d_fake) -> dict[str, Tensor]:
        slopes = trainer.parallel.gather(lipschitz_slopes(d_real, d_fake, real, fake))
        return {"meta_lipschitz": self.weight * meta_adversary_loss(self.meta, slopes)}

    def modules(self) -> dict[str, nn.Module]:
        return {"meta": self.meta}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])


# -- VRAL's generator objectives -----------------------------------------------------------------
def vral_objective(mu_real: float, mu_fake: float, least_squares: bool = False,
                   separate_means: bool = False) -> Objective:
    """VRAL's objective ("vral", "vral_lsq"): the adversary's loss is the meta-discriminators' terms
    alone (Eq. 10), so its objective part is 0; the generator minimises Eq. 11 or Eq. 12. With
    ``separate_means`` (the author's code for the mean-subtraction variant, ``variance_sub.py``) the
    adversary also minimises E_Q D - E_P D, so that its outputs on real and generated data stay apart
    although F sees only the centred outputs (Section 2.3: "the discriminator's goal is to maximize
    the difference between these two means"; Eq. 10 as printed has no such term).

    Eq. 11: s (E_Q D - E_P D) with s = sign(mu_f - mu_r): as printed when mu_f > mu_r, and otherwise
    the sign that moves the generator's outputs towards mu_r; E_P D has no generator gradient and is
    left out of the loss. Eq. 12 (``least_squares``): E_Q (D - mu_r)^2. There is no zero-sum value
    game (a joint optimizer cannot play it) and no loss on generated outputs alone (no lens).
    """
    if mu_real == mu_fake:
        raise ValueError(f"mu_real and mu_fake: both {mu_real}; allowed: two different means")
    sign = 1.0 if mu_fake > mu_real else -1.0
    return Objective(
        "vral_lsq" if least_squares else "vral",
        adversary_loss=(lambda d_real, d_fake: d_fake.mean() - d_real.mean()) if separate_means
        else (lambda d_real, d_fake: d_fake.new_zeros(())),
        generator_loss=(lambda d_real, d_fake: (d_fake - mu_real).pow(2).mean()) if least_squares
        else (lambda d_real, d_fake: sign * d_fake.mean()),
    )


# -- the method: config section ``vral`` ----------------------------------------------------------------
VARIANTS = ("variance", "lipschitz")


class VralConfig(MethodConfig):
    """``vral``: meta-discriminators; with ``objective: vral`` or ``vral_lsq``, VRAL itself."""

    variant: Literal[VARIANTS] = option("variance", "R and F on the outputs (Eq. 8-10), or one M on the slopes "
                                        "of real-generated pairs (Eq. 13)")
    mu_real: Float = option(1.0, "mean of N(mu_r, 1) for the outputs on real data")
    mu_fake: Float = option(-1.0, "mean of N(mu_f, 1) for the outputs on generated data")
    mean_subtraction: Bool = option(False, "centre the outputs on generated data by their batch mean")
    separate_means: Bool = option(False, "with mean_subtraction and objective vral/vral_lsq: the adversary also "
                                  "minimises E_Q D - E_P D (the author's code; not in Eq. 10)")
    order: Literal[ORDERS] = option("sorted", "sorted: the batch, permutation-invariant; ordered: the batch as a "
                                    "vector (the paper's); single: each output alone (the author's code)")
    hidden: Int = option(28, "hidden units of a meta-discriminator (Section 4.1: 28)", ge=1)
    weight: Float = option(1.0, "weight of the meta terms in L_adv", ge=0.0)
    lipschitz_k: Float = option(1.0, "K of the lipschitz variant", gt=0.0)
    lipschitz_sigma: Float = option(0.1, "standard deviation of N(K, sigma) in the lipschitz variant", gt=0.0)
    optim: OptimizerConfig = option(OptimizerConfig(lr=1e-4, eps=3e-6), "the meta-discriminators' optimizer "
                                    "(Algorithm 1's Adam)")


OBJECTIVES = ("vral", "vral_lsq")


def _check_config(section: VralConfig, config: Any, objective: Objective) -> None:
    if config.objective in OBJECTIVES and not (section.enabled and section.variant == "variance"):
        raise ConfigError(f"config key 'objective': got {config.objective!r} without meta-discriminators; "
                          "allowed with vral.enabled=true and vral.variant=variance (VRAL trains the adversary "
                          "through them alone)")
    train = config.train
    if (section.enabled and config.advas.enabled and train.generator_batch_size not in (None, train.batch_size)
            and (section.variant != "variance" or train.generator_batch_size % train.batch_size)):
        raise ConfigError(f"config key 'train.generator_batch_size': got {train.generator_batch_size} with "
                          f"advas.enabled=true and vral.variant={section.variant}; allowed: null, or a multiple of "
                          f"train.batch_size ({train.batch_size}) with vral.variant=variance: AdvAs's r reads the "
                          "meta-discriminators' terms on the generator's samples, in batches of train.batch_size "
                          "(the lipschitz variant pairs each with a real sample)")
    if section.separate_means and not (section.mean_subtraction and config.objective in OBJECTIVES):
        raise ConfigError(f"config key 'vral.separate_means': got true with vral.mean_subtraction="
                          f"{str(section.mean_subtraction).lower()} and objective={config.objective}; allowed: "
                          f"with vral.mean_subtraction=true and objective {' or '.join(OBJECTIVES)} (the term "
                          "replaces the means that mean subtraction no longer pins)")


def _build(section: VralConfig, context: BuildContext) -> Contribution:
    m, device = context.batch_size, context.device
    if section.variant == "variance":
        real_meta = MetaDiscriminator(m, section.hidden, section.order).to(device)
        fake_meta = MetaDiscriminator(m, section.hidden, section.order).to(device)
        optimizer = build_optimizer([*real_meta.parameters(), *fake_meta.parameters()], section.optim)
        component = VarianceMeta(real_meta, fake_meta, optimizer, mu_real=section.mu_real, mu_fake=section.mu_fake,
                                 mean_subtraction=section.mean_subtraction, weight=section.weight)
    else:
        meta = MetaDiscriminator(m, section.hidden, section.order).to(device)
        component = LipschitzMeta(meta, build_optimizer(meta.parameters(), section.optim), k=section.lipschitz_k,
                                  sigma=section.lipschitz_sigma, weight=section.weight)
    return Contribution(components=[component])


METHOD = Method("vral", VralConfig, _build, check=_check_config, objectives={
    "vral": lambda section: vral_objective(section.mu_real, section.mu_fake,
                                           separate_means=section.separate_means),
    "vral_lsq": lambda section: vral_objective(section.mu_real, section.mu_fake, least_squares=True,
                                               separate_means=section.separate_means),
})
