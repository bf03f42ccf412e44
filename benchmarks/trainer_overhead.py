"""The trainer's per-iteration time against a hand-written minimal PyTorch loop.

Same networks (copies of one initialisation), data, batch size, objective and optimizers, run
side by side in one process, one iteration of each in turn, so machine noise hits both alike.
Prints the median time per iteration of each and their ratio, trainer / minimal loop.

    .venv/bin/python benchmarks/trainer_overhead.py [--config configs/digits.yaml] [--iterations 600]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from equilibria.core.optimizers import build_optimizer
from equilibria.training.build import build_trainer
from equilibria.training.config import load_config
from equilibria.training.run import train


def minimal_loop(generator, discriminator, g_opt, d_opt, data, batch_size, n_adv):
    """The loop a user would write for the non-saturating GAN: nothing but the maths."""
    g_params, d_params = list(generator.parameters()), list(discriminator.parameters())
    order = torch.randperm(len(data))
    position = 0

    def real_batch():
        nonlocal order, position
        if position + batch_size > len(order):
            order, position = torch.randperm(len(data)), 0
        batch = data.index_select(0, order[position:position + batch_size])
        position += batch_size
        return batch.float().mul_(2 / 255).sub_(1)

    def step():
        for _ in range(n_adv):
            real = real_batch()
            with torch.no_grad():
                fake = generator(torch.randn(batch_size, generator.latent_dim))
            loss = F.softplus(-discriminator(real)).mean() + F.softplus(discriminator(fake)).mean()
            d_opt.zero_grad(set_to_none=True)
            loss.backward(inputs=d_params)
            d_opt.step()
        fake = generator(torch.randn(batch_size, generator.latent_dim))
        loss = F.softplus(-discriminator(fake)).mean()
        g_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=g_params)
        g_opt.step()

    return step


def interleaved(first, second, iterations: int) -> tuple[list[float], list[float]]:
    """Seconds per call of each, calling them in turn (which goes first alternates)."""
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(iterations):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            start = time.perf_counter()
            (first, second)[which]()
            times[which].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="config of the run to measure (default: the digits demo)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--run-steps", type=int, default=500,
                        help="steps of the whole-run comparison (0 skips it)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = load_config(args.config, [*args.set, "objective=nonsaturating", "penalties.gradient_penalty=0"])
    trainer = build_trainer(config)
    generator, discriminator = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.discriminator)
    baseline = minimal_loop(generator, discriminator,
                            build_optimizer(generator.parameters(), config.optim.generator),
                            build_optimizer(discriminator.parameters(), config.optim.adversary),
                            trainer.batches._data, config.train.batch_size, config.train.n_adv)
    every = config.log.every

    def trainer_step():
        trainer.train_step(diagnostics=(trainer.step + 1) % every == 0)

    interleaved(trainer_step, baseline, 20)  # warm-up
    ours, theirs = interleaved(trainer_step, baseline, args.iterations)
    mine, base = statistics.median(ours), statistics.median(theirs)
    print(f"networks: {config.generator.arch}, batch {config.train.batch_size}, n_adv {config.train.n_adv}, "
          f"threads {args.threads}, {args.iterations} iterations each, interleaved")
    print(f"minimal loop: {base * 1e3:.2f} ms/iteration (median)")
    print(f"trainer:      {mine * 1e3:.2f} ms/iteration (median; diagnostics every {every} steps)")
    print(f"ratio trainer/minimal: {mine / base:.3f} (means: {statistics.fmean(ours) / statistics.fmean(theirs):.3f})")
    if args.run_steps:
        whole_run(args, baseline)


def whole_run(args: argparse.Namespace, baseline) -> None:
    """``equilibria train`` end to end (set-up, progress bar, metrics, TensorBoard, one sample grid and
    checkpoint) against the same number of minimal-loop iterations, timed before and after it."""
    steps = args.run_steps
    overrides = [*args.set, "objective=nonsaturating", "penalties.gradient_penalty=0", f"train.steps={steps}", f"log.sample_every={steps}",
                 f"log.checkpoint_every={steps}", "log.progress=false", f"threads={args.threads}"]
    before = interleaved(baseline, lambda: None, steps)[0]
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        train(load_config(args.config, overrides), run_dir)
        run_seconds = time.perf_counter() - start
    after = interleaved(baseline, lambda: None, steps)[0]
    base = (sum(before) + sum(after)) / 2
    print(f"whole run of {steps} steps: {run_seconds:.2f} s against {base:.2f} s of minimal-loop iterations: "
          f"ratio {run_seconds / base:.3f} (set-up included)")

if __name__ == "__main__":
    main()
