"""Run a training job: the run directory, the loop, logging, samples and checkpoints.

A run directory holds ``config.yaml`` (the resolved config), ``metrics.jsonl``, ``tensorboard/``,
``samples/step-N.png`` and ``checkpoints/step-N.pt``.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from equilibria.core.finite import NonFiniteError
from equilibria.core.optimizers import scheduled_lr
from equilibria.core.parallel import DataParallel, from_environment
from equilibria.core.trainer import Trainer
from equilibria.data import ON_DISK, Dataset, data_root
from equilibria.files import DirectoryLocked, locked, remove_orphans, write_atomically
from equilibria.training import checkpoint
from equilibria.training.build import build_trainer, dataset_of, device_of
from equilibria.training.config import Config, ConfigError, parse_config, read_yaml, set_key, to_dict
from equilibria.training.log import RunLog, progress, scalars

# Keys a resumed run may change: how long it trains and what it records.
RESUMABLE_KEYS = ("train.steps", "log.", "eval.")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_dir(config: Config) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.data.name}-{config.generator.arch}-{config.objective}-s{config.seed}"


def fixed_noise(trainer: Trainer, n: int, seed: int) -> torch.Tensor:
    """Latent codes for sample grids, from their own generator so the training stream is untouched."""
    g = torch.Generator().manual_seed(seed + 12345)
    return torch.randn(n, trainer.generator.latent_dim, generator=g).to(trainer.device)


@torch.no_grad()
def generate(trainer: Trainer, z: torch.Tensor, use_ema: bool = True) -> torch.Tensor:
    """Samples in eval mode (BatchNorm running statistics untouched), from the EMA generator if any."""
    generator = trainer.ema.model if (use_ema and trainer.ema is not None) else trainer.generator
    was_training = generator.training
    generator.eval()
    try:
        return generator(z)
    finally:
        generator.train(was_training)


def load_run_config(run_dir: Path, overrides=()) -> Config:
    """The config a run was started with, with the overrides a resume may make."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory: it has no config.yaml")
    data = read_yaml(path)
    for assignment in overrides:
        key = assignment.partition("=")[0].strip()
        if not any(key == k or (k.endswith(".") and key.startswith(k)) for k in RESUMABLE_KEYS):
            raise ConfigError(f"--set {assignment!r}: {key!r} cannot change on resume; "
                              f"allowed: train.steps, log.* and eval.*")
        set_key(data, assignment)
    return parse_config(data, f"run config {str(path)!r}")


def restore_run(run_dir: str | Path) -> tuple[Trainer, Dataset, Path]:
    """A trainer built from a run's config with its newest readable checkpoint loaded, the dataset, and
    that checkpoint's path (for analyses that continue or probe a finished run)."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    dataset = dataset_of(config)
    trainer = build_trainer(config, dataset)
    state, path, skipped = checkpoint.load_latest(run_dir / "checkpoints")
    warn_skipped(skipped)
    checkpoint.restore(trainer, state, path)
    return trainer, dataset, path


class RunStopped(Exception):
    """The run stopped before ``train.steps`` on a signal (SIGTERM, SIGINT), its state checkpointed."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


_SIGNALS = {signal.SIGTERM: ("SIGTERM", 143), signal.SIGINT: ("SIGINT", 130)}


@contextlib.contextmanager
def stop_requests() -> Iterator[list[int]]:
    """SIGTERM and SIGINT ask the loop to stop after the current iteration (the list holds them); a
    second SIGINT interrupts at once. Outside the main thread, signals are left alone."""
    requested: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def handler(signum: int, frame: Any) -> None:
        if requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested.append(signum)

    previous = {signum: signal.signal(signum, handler) for signum in _SIGNALS}
    try:
        yield requested
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def warn_skipped(skipped: list[str]) -> None:
    """Say which newer checkpoints were unreadable."""
    for reason in skipped:
        print(f"equilibria: skipped {reason}; using an older checkpoint", file=sys.stderr, flush=True)


def with_resolved_paths(config: Config) -> Config:
    """The config with ``data.root`` resolved to an absolute path for datasets read from disk (so that
    config.yaml records the data a resume in another shell must read)."""
    if config.data.name not in ON_DISK:
        return config
    root = str(data_root(config.data.root).resolve())
    return config.model_copy(update={"data": config.data.model_copy(update={"root": root})})


def train(config: Config, run_dir: str | Path | None = None, *, resume: bool = False) -> Path:
    """Train as ``config`` says, writing to ``run_dir``; with ``resume`` continue its newest readable
    checkpoint. A non-finite quantity stops the run (``NonFiniteError``) with its last good checkpoint
    kept; SIGTERM and SIGINT stop it after the current iteration with a checkpoint (``RunStopped``);
    an exception between iterations writes a checkpoint before it propagates. One process at a time
    trains a run directory: another one still training it is refused (``ConfigError``), before
    anything is read or written."""
    parallel = from_environment(device_of(config))
    run_dir = Path(parallel.broadcast(str(run_dir or config.run_dir or default_run_dir(config))))
    try:
        with locked(run_dir) if parallel.main else contextlib.nullcontext():  # under torchrun the first writes
            return _train(config, run_dir, parallel, resume)
    except DirectoryLocked as busy:
        raise ConfigError(f"run directory {str(run_dir)!r}: process {busy.pid or '(unknown)'} is training it; "
                          "allowed: one process per run directory (stop that one first: it checkpoints on "
                          "SIGTERM)") from None


def _train(config: Config, run_dir: Path, parallel: DataParallel, resume: bool) -> Path:
    ckpt_dir = run_dir / "checkpoints"
    if not resume and checkpoint.checkpoints(ckpt_dir):
        raise ConfigError(f"run directory {str(run_dir)!r} already has checkpoints: "
                          f"use 'equilibria resume {run_dir}' or choose another run_dir")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    config = with_resolved_paths(config)
    dataset = dataset_of(config)
    trainer = build_trainer(config, dataset, parallel)
    elapsed, resume_step, last_saved = 0.0, None, None
    if resume:
        if not checkpoint.checkpoints(ckpt_dir):
            raise FileNotFoundError(f"run directory {str(run_dir)!r} has no checkpoint to resume from")
        state, last_saved, skipped = checkpoint.load_latest(ckpt_dir, map_location=trainer.device)
        if parallel.main:
            warn_skipped(skipped)
        if config.train.steps < state.step:
            raise ConfigError(f"config key 'train.steps': got {config.train.steps}, but the run in {str(run_dir)!r} "
                              f"has done {state.step} steps; allowed: >= {state.step}")
        checkpoint.restore(trainer, state, last_saved)
        checkpoint.set_rng_state(state.rng)
        elapsed, resume_step = state.seconds, trainer.step
    if parallel.main:  # the first process alone writes the run directory
        for directory in (run_dir, ckpt_dir, run_dir / "samples"):
            for orphan in remove_orphans(directory):
                print(f"equilibria: removed {orphan}, left by a write that was cut short", file=sys.stderr)
        write_atomically(run_dir / "config.yaml",
                         lambda handle: handle.write(yaml.safe_dump(to_dict(config), sort_keys=False).encode()))
        batch = config.train.batch_size
        processes = (f"{parallel.world} processes ({torch.distributed.get_backend()}), {batch // parallel.world} of "
                     f"each global batch of {batch}" if parallel.world > 1 else f"1 process, batch {batch}")
        if config.train.generator_batch_size not in (None, batch):
            processes += f" (the generator's step: {config.train.generator_batch_size})"
        print(f"equilibria: {'resuming' if resume else 'training'} {run_dir} from step {trainer.step} to "
              f"{config.train.steps} on {processes}, {trainer.device}, {config.train.precision}"
              + (", compiled" if config.train.compile else ""), flush=True)
    log = RunLog(run_dir, config.log.tensorboard, resume_step, enabled=parallel.main)
    z_fixed = fixed_noise(trainer, config.log.num_samples * (16 if dataset.kind == "points" else 1), config.seed)
    real_points = dataset.data[:len(z_fixed)] if dataset.kind == "points" else None
    value_range = trainer.generator.output_range or (-1.0, 1.0)

    def save_samples() -> None:
        if not parallel.main:
            return
        log.samples(run_dir / "samples" / f"step-{trainer.step:08d}.png", trainer.step,
                    generate(trainer, z_fixed), real_points, value_range, centers=dataset.centers)
        for component in trainer.components:
            for name, images in component.sample_images(trainer).items():
                log.samples(run_dir / "samples" / f"{name}-step-{trainer.step:08d}.png", trainer.step, images,
                            None, value_range, tag=name)

    saving = False

    def save_checkpoint() -> Path:
        nonlocal saving
        saving = True
        trainer.check_finite(parameters=True)  # never a checkpoint of a non-finite state (on every process)
        path = ckpt_dir / f"step-{trainer.step:08d}.pt"
        if parallel.main:
            checkpoint.save(ckpt_dir, trainer, seconds=elapsed, sample_shape=dataset.sample_shape,
                            keep=config.log.keep_checkpoints)
            log.flush()
        saving = False
        return path

    evaluate_generator = None
    if config.eval.every:
        from equilibria.metrics.evaluation import evaluator

        e = config.eval

        def build_evaluator():
            return evaluator(
                dataset, e.metrics.split(",") if e.metrics else None, e.extractor, num_samples=e.num_samples,
                value_range=value_range, data_root=config.data.root, data_split=config.data.split,
                progress=config.log.progress and parallel.main, batch_size=e.batch_size, seed=e.seed,
                reference_size=e.reference_size, kid_subset_size=e.kid_subset_size, device=trainer.device,
                parallel=parallel)

        # the first process trains the classifier and extracts the reference features into the caches,
        # the others read them there
        if parallel.main:
            evaluate_generator = build_evaluator()
        parallel.broadcast(None)
        if not parallel.main:
            evaluate_generator = build_evaluator()

    steps = config.train.steps
    schedules = [(name, optimizer, section) for name, optimizer, section in (
        ("generator", trainer.g_optimizer, config.optim.generator), ("adversary", trainer.d_optimizer,
                                                                      config.optim.adversary))
        if optimizer is not None and section.decay != "constant"]
    bar = progress(steps, trainer.step, config.log.progress and parallel.main)
    started = time.perf_counter() - elapsed
    in_iteration = False
    try:
        with stop_requests() as stop:
            while trainer.step < steps:
                logging_step = (trainer.step + 1) % config.log.every == 0 or trainer.step + 1 == steps
                for _, optimizer, section in schedules:  # a function of the step: a resumed run continues it
                    for group in optimizer.param_groups:
                        group["lr"] = scheduled_lr(section, trainer.step, steps)
                in_iteration = True
                logs = trainer.train_step(diagnostics=logging_step)
                in_iteration = False
                elapsed = time.perf_counter() - started
                bar.update(1)
                if logging_step:
                    trainer.check_finite()
                    values = mean_over_processes(scalars(logs), parallel, trainer.batch_size)
                    values.update({f"lr/{name}": optimizer.param_groups[0]["lr"] for name, optimizer, _ in schedules})
                    log.metrics(trainer.step, elapsed, values)
                    bar.set_postfix({k: f"{values[k]:.3g}" for k in ("loss_adv", "loss_gen") if k in values})
                if trainer.step % config.log.sample_every == 0 or trainer.step == steps:
                    save_samples()
                if evaluate_generator is not None and (trainer.step % config.eval.every == 0 or trainer.step == steps):
                    eval_started = time.perf_counter()
                    scores = evaluate_generator(trainer.ema.model if trainer.ema is not None else trainer.generator)
                    eval_seconds = time.perf_counter() - eval_started
                    started += eval_seconds  # the logged time is training time only; the evaluation's is its own
                    log.metrics(trainer.step, elapsed, {**{f"eval/{name}": value for name, value in scores.items()},
                                                        "eval_seconds": round(eval_seconds, 3)})
                if trainer.step % config.log.checkpoint_every == 0 or trainer.step == steps:
                    last_saved = save_checkpoint()
                if parallel.any(bool(stop)):
                    name, code = _SIGNALS[stop[0]] if stop else ("a signal to another process", 143)
                    if last_saved is None or checkpoint.step_of(last_saved) != trainer.step:
                        last_saved = save_checkpoint()
                    raise RunStopped(f"stopped by {name} after step {trainer.step} of {steps}; checkpoint "
                                     f"{last_saved} written; continue with: equilibria resume {run_dir}", code)
    except NonFiniteError as error:
        error.add_note(_last_checkpoint(last_saved))
        raise
    except RunStopped:
        raise
    except BaseException as error:
        if in_iteration:
            error.add_note(f"equilibria: the error came in the middle of iteration {trainer.step + 1}, whose partial "
                           f"update cannot be checkpointed; {_last_checkpoint(last_saved)}")
        elif not saving and (last_saved is None or checkpoint.step_of(last_saved) != trainer.step):
            try:
                last_saved = save_checkpoint()
                error.add_note(f"equilibria: checkpoint {last_saved} of step {trainer.step} written before exiting")
            except Exception as failure:  # noqa: BLE001 - the original error is the one to report
                error.add_note(f"equilibria: no checkpoint written on the way out ({failure}); "
                               f"{_last_checkpoint(last_saved)}")
        raise
    finally:
        bar.close()
        log.close()
    return run_dir


def mean_over_processes(values: dict[str, float], parallel: DataParallel, shard: int) -> dict[str, float]:
    """The logged scalars of the global batch from each process's share of ``shard`` samples: means
    are averaged; a standard deviation ``X_std`` beside its mean ``X`` is combined exactly."""
    if parallel.world == 1:
        return values
    spread = {key: key.removesuffix("_std") for key in values if key.endswith("_std") and key[:-4] in values}
    local = dict(values)
    for key, mean in spread.items():  # the mean of squares, which averages
        local[key] = ((shard - 1) * values[key] ** 2 + shard * values[mean] ** 2) / shard
    stacked = torch.tensor(list(local.values()), dtype=torch.float64, device=parallel.device)  # NCCL: on the GPU
    parallel.average([stacked])
    merged = dict(zip(local, stacked.tolist()))
    n = shard * parallel.world
    for key, mean in spread.items():
        merged[key] = max(n * (merged[key] - merged[mean] ** 2) / (n - 1), 0.0) ** 0.5
    return merged


def _last_checkpoint(path: Path | None) -> str:
    if path is None:
        return "no checkpoint was written"
    return f"the last good checkpoint is {path} (step {checkpoint.step_of(path)})"
