"""Build a trainer from a validated config: data, networks, optimizers, penalties, components."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from equilibria import penalties as P
from equilibria.data import BatchSampler, Dataset, load_dataset
from equilibria.models import build_discriminator, build_generator, init_weights
from equilibria.objectives import get_objective
from equilibria.training.components import Component
from equilibria.training.config import Config, ConfigError, OptimizerConfig, PenaltyConfig
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


def build_components(config: Config, generator: nn.Module, discriminator: nn.Module) -> list[Component]:
    """The methods' components named by the config (added by the methods' issues)."""
    return []


def build_trainer(config: Config, dataset: Dataset | None = None) -> Trainer:
    """Everything a run needs, from the config; ``dataset`` saves reloading it."""
    device = device_of(config)
    dataset = dataset if dataset is not None else dataset_of(config)
    torch.manual_seed(config.seed)
    generator, discriminator = build_networks(config, dataset.sample_shape)
    generator.to(device)
    discriminator.to(device)
    batches = BatchSampler(dataset, config.train.batch_size, seed=config.seed,
                           value_range=generator.output_range, device=device)
    return Trainer(
        generator,
        discriminator,
        get_objective(config.objective),
        batches,
        g_optimizer=build_optimizer(generator.parameters(), config.optim.generator),
        d_optimizer=build_optimizer(discriminator.parameters(), config.optim.adversary),
        batch_size=config.train.batch_size,
        n_adv=config.train.n_adv,
        update=config.train.update,
        penalties=penalty_terms(config.penalties),
        weight_clip=config.penalties.weight_clip,
        components=build_components(config, generator, discriminator),
        ema=config.train.ema,
    )
