"""Build a trainer from a validated config: data, networks, optimizers, penalties and what every
enabled method contributes (no method is named here: the registry is iterated)."""

from __future__ import annotations

import torch
from torch import nn

from equilibria.core import penalties as P
from equilibria.core.method import BuildContext
from equilibria.core.optimizers import build_optimizer
from equilibria.core.parallel import SINGLE, DataParallel, local_device, synchronise_batchnorm
from equilibria.core.trainer import Trainer
from equilibria.data import BatchSampler, Dataset, load_dataset
from equilibria.models import build_discriminator, build_generator, init_weights
from equilibria.training.config import Config, ConfigError, enabled_methods, objective_of


def device_of(config: Config) -> torch.device:
    """The config's device; ``cuda`` under torchrun is this process's GPU (``cuda:LOCAL_RANK``)."""
    device = local_device(torch.device(config.device))
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
    except ValueError as error:
        raise ConfigError(f"config section 'data' (data.name={d.name}, data.split={d.split}): {error}") from None


def build_networks(config: Config, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    g, d = config.generator, config.discriminator
    generator = build_generator(g.arch, latent_dim=g.latent_dim, width=g.width, out_shape=tuple(sample_shape))
    discriminator = build_discriminator(d.arch or g.arch, width=d.width, in_shape=tuple(sample_shape))
    init_weights(generator, g.init)
    init_weights(discriminator, d.init)
    if d.spectral_norm:
        P.apply_spectral_norm(discriminator)
    return generator, discriminator


def penalties_of(config: Config) -> list[P.Penalty]:
    """The core penalties the config switches on (weight > 0), as terms of L_adv."""
    c = config.penalties
    terms = [P.GradientPenalty(c.gradient_penalty, c.gradient_penalty_center), P.R1(c.r1), P.R2(c.r2), P.L2(c.l2)]
    return [term for term in terms if term.weight > 0]


def build_trainer(config: Config, dataset: Dataset | None = None, parallel: DataParallel = SINGLE) -> Trainer:
    """Everything a run needs, from the config; ``dataset`` saves reloading it; ``parallel``: this
    process among the data-parallel ones (each trains its share of every global batch)."""
    device = device_of(config)
    if config.train.batch_size % parallel.world:
        raise ConfigError(f"config key 'train.batch_size': got {config.train.batch_size} on {parallel.world} "
                          f"processes; allowed: a multiple of {parallel.world} (each trains an equal share)")
    generator_batch = config.train.generator_batch_size or config.train.batch_size
    if generator_batch % parallel.world:
        raise ConfigError(f"config key 'train.generator_batch_size': got {generator_batch} on {parallel.world} "
                          f"processes; allowed: a multiple of {parallel.world} (each trains an equal share)")
    dataset = dataset if dataset is not None else dataset_of(config)
    torch.manual_seed(config.seed)
    generator, discriminator = build_networks(config, dataset.sample_shape)
    generator.to(device)
    discriminator.to(device)
    if parallel.world > 1 and config.train.sync_batchnorm:
        synchronise_batchnorm(generator)
        synchronise_batchnorm(discriminator)
    if hasattr(generator, "draw_batch"):  # per-sample noise in training (stylegan2): the global batch's share
        generator.draw_batch = parallel.draw
    objective = objective_of(config)
    context = BuildContext(generator, discriminator, objective, tuple(dataset.sample_shape), config.train.batch_size,
                           device, config.log.num_samples, parallel)
    components, penalties, joint = [], penalties_of(config), None
    for method, section in enabled_methods(config):
        contribution = method.build(section, context)
        components += contribution.components
        penalties += contribution.penalties
        joint = contribution.joint_optimizer or joint
    batches = BatchSampler(dataset, config.train.batch_size, seed=config.seed,
                           value_range=generator.output_range or (-1.0, 1.0), device=device, part=parallel.part)
    return Trainer(
        generator,
        discriminator,
        objective,
        batches,
        g_optimizer=None if joint else build_optimizer(generator.parameters(), config.optim.generator),
        d_optimizer=None if joint else build_optimizer(discriminator.parameters(), config.optim.adversary),
        joint_optimizer=joint,
        batch_size=config.train.batch_size // parallel.world,
        generator_batch_size=generator_batch // parallel.world,
        n_adv=config.train.n_adv,
        update=config.train.update,
        penalties=penalties,
        weight_clip=config.penalties.weight_clip,
        components=components,
        ema=config.train.ema,
        nonfinite=config.train.nonfinite,
        max_skips=config.train.max_skips,
        parallel=parallel,
        precision=config.train.precision,
        compile=config.train.compile,
        channels_last=config.train.channels_last,
    )
