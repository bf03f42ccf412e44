"""AdvAs's cost on the E.1 networks (WGAN-GP on MNIST), measured against its baselines side by side.

All timings in one process, the measured calls interleaved round by round (each round starts with
a different one), medians reported:

1. the generator step with AdvAs (hvp and exact) against one adversary step with the gradient
   penalty (target: at most 2.5x for the default, hvp);
2. g_AdvAs alone: hvp (forward and central differences) against exact double backward (target:
   hvp at least 1.5x faster), and PyTorch's native double backward for reference (it runs, but on
   the E.1 networks its third derivatives through InstanceNorm are wrong: docs/ADVAS.md);
3. a whole iteration of AdvAs with n_adv = 1 against the baselines with n_adv = 5 and 1;
4. the unbiased estimator against the biased one.

``--accuracy-steps 0 50 ...`` adds the eps calibration table of docs/ADVAS.md (float32 hvp against
float64 exact after that many training iterations), ``--skip-timing`` leaves the timings out.

    .venv/bin/python benchmarks/advas.py --set data.root=../shared/data/mnist --set data.split=test

Section 1 alone on StyleGAN2 at 64 x 64 (width reduced for the CPU, batch 8; the target there is at
most 3x), on stacked MNIST (three channels) for want of CelebA:

    .venv/bin/python benchmarks/advas.py --config configs/advas-stylegan2-celeba64-baseline.yaml --steps-only \
        --batch-size 8 --set data.name=stacked_mnist --set data.root=../shared/data/mnist --set data.split=test \
        --set generator.width=64 --set discriminator.width=64
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from equilibria.methods.advas import AdvAs, advas_gradient, advas_gradient_unbiased, per_sample_adversary_loss
from equilibria.core.objectives import untruncated
from equilibria.training.build import build_trainer
from equilibria.training.config import load_config
from equilibria.core.trainer import Trainer


def interleaved(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per call of each, calling all once per round in a rotating order."""
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def trainer_for(args: argparse.Namespace, n_adv: int, *components) -> Trainer:
    config = load_config(args.config, [*args.set, f"train.batch_size={args.batch_size}", f"train.n_adv={n_adv}"])
    trainer = build_trainer(config)
    trainer.components = list(components)
    return trainer


def adversary_loss_of(trainer: Trainer, real: Tensor) -> Callable[[Tensor], Tensor]:
    objective = untruncated(trainer.objective)
    return lambda x: trainer.adversary_loss(real, x, objective=objective)[0]


def native_double_backward(trainer: Trainer, real: Tensor, z: Tensor) -> None:
    """grad_theta ||grad_phi L_adv||^2 by plain double backward with PyTorch's own norm kernels."""
    fake = trainer.generator(z)
    loss = adversary_loss_of(trainer, real)(fake)
    v = torch.autograd.grad(loss, list(trainer.discriminator.parameters()), create_graph=True)
    torch.autograd.grad(torch.stack([t.pow(2).sum() for t in v]).sum(), list(trainer.generator.parameters()))


def print_ratios(title: str, medians: dict[str, float], baseline: str) -> None:
    print(f"\n{title}")
    for name, seconds in medians.items():
        print(f"  {name:<44} {seconds * 1e3:9.1f} ms   {seconds / medians[baseline]:6.2f}x {baseline}")


def step_costs(args: argparse.Namespace) -> None:
    advas = {"hvp": AdvAs(mode="hvp"), "exact": AdvAs(mode="exact")}
    trainer = trainer_for(args, 1)
    trainer.step = 1  # an iteration without StyleGAN2's lazy regularisers (every 4th and 16th has them)
    _, real = trainer.real_batch()
    z = trainer.noise(args.batch_size)

    def generator_step(components: list) -> Callable[[], None]:
        def call() -> None:
            trainer.components = components
            trainer._generator_update(real, False)
        return call

    def gradient(mode: str, difference: str = "forward") -> Callable[[], None]:
        def call() -> None:
            trainer.components = []
            advas_gradient(adversary_loss_of(trainer, real), trainer.generator(z), trainer.generator,
                           trainer.discriminator, mode=mode, difference=difference)
        return call

    calls = {
        "adversary step": lambda: trainer._adversary_update(False),
        "generator step, AdvAs hvp (default)": generator_step([advas["hvp"]]),
        "generator step, AdvAs exact": generator_step([advas["exact"]]),
        "generator step, no AdvAs": generator_step([]),
        "g_AdvAs hvp forward": gradient("hvp"),
        "g_AdvAs hvp central": gradient("hvp", "central"),
        "g_AdvAs exact (composite norms)": gradient("exact"),
        "g_AdvAs native double backward": lambda: native_double_backward(trainer, real, z),
    }
    interleaved(calls, 1)  # warm-up
    medians = interleaved(calls, args.rounds)
    steps = {k: v for k, v in medians.items() if "step" in k}
    print_ratios("1. generator step with AdvAs / adversary step (target for hvp: <= 2.5x on E.1, 3x on StyleGAN2)",
                 steps, "adversary step")
    gradients = {k: v for k, v in medians.items() if k.startswith("g_AdvAs")}
    print_ratios("2. g_AdvAs alone (target: hvp >= 1.5x faster than exact)", gradients,
                 "g_AdvAs exact (composite norms)")
    ratio = gradients["g_AdvAs exact (composite norms)"] / gradients["g_AdvAs hvp forward"]
    print(f"  exact / hvp forward: {ratio:.2f}x")


def iteration_costs(args: argparse.Namespace) -> None:
    trainers = {"AdvAs, n_adv = 1": trainer_for(args, 1, AdvAs(mode="hvp")),
                "baseline, n_adv = 5": trainer_for(args, 5), "baseline, n_adv = 1": trainer_for(args, 1)}
    calls = {name: trainer.train_step for name, trainer in trainers.items()}
    interleaved(calls, 1)
    print_ratios("3. whole iteration", interleaved(calls, args.rounds), "baseline, n_adv = 5")


def estimator_costs(args: argparse.Namespace) -> None:
    trainer = trainer_for(args, 1)
    _, real = trainer.real_batch()
    z = trainer.noise(args.batch_size)
    per_sample = per_sample_adversary_loss(trainer.discriminator, untruncated(trainer.objective), trainer.penalties)
    loss = adversary_loss_of(trainer, real)
    g, d = trainer.generator, trainer.discriminator
    calls = {
        "biased (hvp)": lambda: advas_gradient(loss, g(z), g, d, mode="hvp"),
        "unbiased (hvp + exact per-sample part)": lambda: advas_gradient_unbiased(loss, per_sample, real, g(z), g, d,
                                                                                  mode="hvp"),
        "unbiased, chunk_size=None (one vmap)": lambda: advas_gradient_unbiased(loss, per_sample, real, g(z), g, d,
                                                                                mode="hvp", chunk_size=None),
    }
    interleaved(calls, 1)
    print_ratios("4. unbiased / biased estimator", interleaved(calls, args.unbiased_rounds), "biased (hvp)")


def fixed_weights_wgan_gp(d: torch.nn.Module, real: Tensor, e: Tensor) -> Callable[[Tensor], Tensor]:
    """WGAN-GP with given interpolation weights, so that both precisions see the same ones."""
    def loss(x: Tensor) -> Tensor:
        x_hat = torch.lerp(x, real, e.to(x.dtype))
        slope = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)[0]
        return d(x).mean() - d(real).mean() + 10 * (slope.flatten(1).norm(dim=1) - 1).pow(2).mean()
    return loss


def flat_advas_gradient(g: torch.nn.Module, d: torch.nn.Module, real: Tensor, z: Tensor, e: Tensor,
                        **options) -> Tensor:
    dtype = next(g.parameters()).dtype
    result = advas_gradient(fixed_weights_wgan_gp(d, real.to(dtype), e), g(z.to(dtype)), g, d, **options)
    return torch.cat([t.flatten() for t in result.gradient]).double()


def accuracy(args: argparse.Namespace) -> None:
    """Relative error of the float32 hvp gradient against the float64 exact one, by eps_scale."""
    trainer = trainer_for(args, 1)
    grid = {"forward": [1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7], "central": [1e-3, 3e-4, 1e-4, 5e-5, 1e-5, 3e-6]}
    done = 0
    print("\neps calibration: relative error of float32 hvp against float64 exact (and of float32 exact)")
    for steps in args.accuracy_steps:
        while done < steps:
            trainer.train_step()
            done += 1
        g32, d32 = trainer.generator, trainer.discriminator
        g64, d64 = copy.deepcopy(g32).double(), copy.deepcopy(d32).double()
        _, real = trainer.real_batch()
        batch = (real, trainer.noise(args.batch_size), torch.rand(args.batch_size, 1, 1, 1))
        reference = flat_advas_gradient(g64, d64, *batch, mode="exact")

        def error(options: dict, batch=batch, reference=reference, g32=g32, d32=d32) -> str:
            gradient = flat_advas_gradient(g32, d32, *batch, **options)
            return f"{float((gradient - reference).norm() / reference.norm()):.1e}"

        print(f"  step {steps}: exact float32 {error({'mode': 'exact'})}")
        for difference, scales in grid.items():
            cells = [f"{c:.0e}: {error({'mode': 'hvp', 'difference': difference, 'eps_scale': c})}" for c in scales]
            print(f"    {difference:<8} {' | '.join(cells)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/advas-mnist-wgangp-nadv1.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=8, help="rounds of sections 1-3")
    parser.add_argument("--unbiased-rounds", type=int, default=3, help="rounds of section 4")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--accuracy-steps", type=int, nargs="*", default=[])
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--steps-only", action="store_true", help="time section 1 alone")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.config} {' '.join(args.set)}, batch {args.batch_size}, threads {args.threads}, torch "
          f"{torch.__version__}, {args.rounds} interleaved rounds (section 4: {args.unbiased_rounds}); medians")
    if args.steps_only:
        step_costs(args)
    elif not args.skip_timing:
        step_costs(args)
        iteration_costs(args)
        estimator_costs(args)
    if args.accuracy_steps:
        accuracy(args)


if __name__ == "__main__":
    main()
