"""Build a trainer from a validated config: data, networks, optimizers, penalties, components."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from equilibria import penalties as P
from equilibria.data import BatchSampler, Dataset, load_dataset
from equilibria.models import build_discriminator, build_generator, init_weights
from equilibria.methods.advas import AdvAs
from equilibria.methods.lens import Lens, LensComponent
from equilibria.methods.meta import LipschitzMeta, MetaDiscriminator, VarianceMeta
from equilibria.objectives import Objective, get_objective, vral_objective
from equilibria.optim import ACGD, CGD
from equilibria.training.components import Component
from equilibria.training.config import (AdvAsConfig, Config, ConfigError, JointOptimizerConfig, OptimizerConfig,
                                       PenaltyConfig)
from equilibria.training.trainer import PenaltyTerm, Trainer


def device_of(config: Config) -> torch.device:
    try:
        device = torch.device(config.device)
    except RuntimeError:
        raise ConfigError(f"config key 'device': got {config.device!r}; allowed: cpu, cuda, cuda:N, mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"config key 'device': got {config.device!r}, but CUDA is not available; allowed: cpu")
    return device


def dataset_of(config: Config) -> Dataset:
    d = config.data
    try:
        return load_dataset(d.name, root=d.root, split=d.split, image_size=d.image_size,
                            num_samples=d.num_samples, seed=config.seed)
    except FileNotFoundError as error:
        raise ConfigError(f"config key 'data.root': got {d.root!r} (data.name={d.name}, data.split={d.split}): "
                          f"{error}") from None


def build_networks(config: Config, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    g, d = config.generator, config.discriminator
    generator = build_generator(g.arch, latent_dim=g.latent_dim, width=g.width, out_shape=tuple(sample_shape))
    discriminator = build_discriminator(d.arch or g.arch, width=d.width, in_shape=tuple(sample_shape))
    init_weights(generator, g.init)
    init_weights(discriminator, d.init)
    if d.spectral_norm:
        P.apply_spectral_norm(discriminator)
    return generator, discriminator


def build_optimizer(parameters, config: OptimizerConfig) -> torch.optim.Optimizer:
    if config.name == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, betas=config.betas, eps=config.eps,
                                weight_decay=config.weight_decay)
    if config.name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.lr, alpha=config.alpha, eps=config.eps,
                                   momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def build_joint_optimizer(config: JointOptimizerConfig, generator: nn.Module, discriminator: nn.Module) -> CGD:
    """The joint optimizer of ``config``: the generator is the min player, the discriminator the max player."""
    common = dict(min_params=generator.parameters(), max_params=discriminator.parameters(), lr=config.lr,
                  lr_min=config.lr_generator, lr_max=config.lr_adversary, tol=config.tol, atol=config.atol,
                  max_iter=config.max_iter, solver=config.solver, restart=config.restart, warm_start=config.warm_start)
    if config.name == "acgd":
        return ACGD(beta=config.beta, eps=config.eps, **common)
    return CGD(**common)


def _weighted(weight: float, penalty, discriminator: nn.Module, real, fake):
    return weight * penalty(discriminator, real, fake)


def penalty_terms(config: PenaltyConfig) -> dict[str, PenaltyTerm]:
    """The loss penalties switched on in ``config``, each with its weight, as terms of L_adv."""
    terms: dict[str, PenaltyTerm] = {}
    if config.gradient_penalty > 0:
        gp = partial(P.gradient_penalty, center=config.gradient_penalty_center)
        terms["gradient_penalty"] = partial(_weighted, config.gradient_penalty, gp)
    if config.r1 > 0:
        terms["r1"] = partial(_weighted, config.r1, lambda disc, real, fake: P.r1_penalty(disc, real))
    if config.l2 > 0:
        terms["l2"] = partial(_weighted, config.l2, lambda disc, real, fake: P.l2_penalty(disc))
    return terms


def objective_of(config: Config) -> Objective:
    if config.objective.startswith("vral"):
        return vral_objective(config.meta.mu_real, config.meta.mu_fake, config.objective == "vral_lsq")
    return get_objective(config.objective)


def build_components(config: Config, sample_shape: tuple[int, ...], device: torch.device) -> list[Component]:
    """The methods' components the config switches on, in the order their hooks run."""
    components: list[Component] = []
    if config.lens.enabled:
        c = config.lens
        lens = Lens(sample_shape[0], width=c.width, blocks=c.blocks).to(device)
        components.append(LensComponent(lens, build_optimizer(lens.parameters(), c.optim), config.objective,
                                        lam=c.lam, anneal_steps=c.anneal_steps, switch_off=c.switch_off,
                                        switch_off_tol=c.switch_off_tol, reconstruction=c.reconstruction,
                                        num_images=config.log.num_samples))
    if config.meta.enabled:
        c, m = config.meta, config.train.batch_size
        if c.variant == "variance":
            real_meta = MetaDiscriminator(m, c.hidden, c.order).to(device)
            fake_meta = MetaDiscriminator(m, c.hidden, c.order).to(device)
            optimizer = build_optimizer([*real_meta.parameters(), *fake_meta.parameters()], c.optim)
            components.append(VarianceMeta(real_meta, fake_meta, optimizer, mu_real=c.mu_real, mu_fake=c.mu_fake,
                                           mean_subtraction=c.mean_subtraction, weight=c.weight))
        else:
            meta = MetaDiscriminator(m, c.hidden, c.order).to(device)
            components.append(LipschitzMeta(meta, build_optimizer(meta.parameters(), c.optim), k=c.lipschitz_k,
                                            sigma=c.lipschitz_sigma, weight=c.weight))
    advas = build_advas(config.advas, config.penalties)
    if advas is not None:
        components.append(advas)
    return components


def build_advas(config: AdvAsConfig, penalties: PenaltyConfig | None = None) -> AdvAs | None:
    """The AdvAs component a run config asks for (None when ``advas.enabled`` is false).

    ``penalties`` (the run's penalty weights) give the per-sample L_adv of the unbiased estimator.
    """
    if not config.enabled:
        return None
    weights = {}
    if penalties is not None:
        weights = {"gradient_penalty": penalties.gradient_penalty,
                   "gradient_penalty_center": penalties.gradient_penalty_center, "r1": penalties.r1, "l2": penalties.l2}
    return AdvAs(lam=config.lam, mode=config.mode, difference=config.difference, eps_scale=config.eps_scale,
                 estimator=config.estimator, hinge_truncation=config.hinge_truncation, r_only=config.r_only,
                 chunk_size=config.chunk_size, penalties=weights)


def build_trainer(config: Config, dataset: Dataset | None = None) -> Trainer:
    """Everything a run needs, from the config; ``dataset`` saves reloading it."""
    device = device_of(config)
    dataset = dataset if dataset is not None else dataset_of(config)
    torch.manual_seed(config.seed)
    generator, discriminator = build_networks(config, dataset.sample_shape)
    components = build_components(config, dataset.sample_shape, device)
    generator.to(device)
    discriminator.to(device)
    batches = BatchSampler(dataset, config.train.batch_size, seed=config.seed,
                           value_range=generator.output_range, device=device)
    joint = config.train.update == "joint"
    return Trainer(
        generator,
        discriminator,
        objective_of(config),
        batches,
        g_optimizer=None if joint else build_optimizer(generator.parameters(), config.optim.generator),
        d_optimizer=None if joint else build_optimizer(discriminator.parameters(), config.optim.adversary),
        joint_optimizer=build_joint_optimizer(config.optim.joint, generator, discriminator) if joint else None,
        batch_size=config.train.batch_size,
        n_adv=config.train.n_adv,
        update=config.train.update,
        penalties=penalty_terms(config.penalties),
        weight_clip=config.penalties.weight_clip,
        components=components,
        ema=config.train.ema,
    )
