"""ACGD's step against the reference package CGDs (0.4.5) and against an Adam step of both players.

The ICR MNIST networks (Tables 1 and 2), one initialisation copied for each optimizer, the same
real batches and latent codes, the WGAN value without regularisation (ICR's best ACGD setting),
run side by side in one process, one step of each in turn. Both ACGDs use the same step sizes
(the benchmark sets our eps to CGDs' eps / sqrt(1 - beta^t) at step t: CGDs adds eps before the
bias correction) and the same solver tolerance (CGDs compares squared norms: its tol is our tol^2).
Ours runs twice: with the CG warm start (the default) and without. Prints median seconds per step
(forward pass included), CG iterations and Hessian-vector products per step, and the ratios; how
far our parameters are from CGDs' after each step, relative to the distance CGDs travelled (float32
rounding apart, the two agree; the game amplifies that rounding within a few steps, docs/CGD.md);
then the two ways of taking a mixed Hessian-vector product.

    .venv/bin/python benchmarks/acgd.py --data-root ../shared/data/mnist [--steps 6] [--tol 1e-6]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time

import torch

from equilibria.data import BatchSampler, load_dataset
from equilibria.models import build_discriminator, build_generator
from equilibria.core.objectives import get_objective
from equilibria.optim import ACGD, MixedHessian

SHAPE = (1, 28, 28)


def networks(seed: int):
    torch.manual_seed(seed)
    return build_generator("icr_mnist", out_shape=SHAPE), build_discriminator("icr_mnist", in_shape=SHAPE)


def flat(*modules) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for m in modules for p in m.parameters()])


def counting_cgds():
    """CGDs' ACGD class, with its Hessian-vector products and CG iterations recorded (without its
    collect_info option, which adds norm computations to the step)."""
    import CGDs.acgd
    import CGDs.cgd_utils

    calls = {"hvps": 0, "iterations": 0}
    hvp, solve = CGDs.cgd_utils.Hvp_vec, CGDs.acgd.general_conjugate_gradient

    def counted_hvp(*args, **kwargs):
        calls["hvps"] += 1
        return hvp(*args, **kwargs)

    def counted_solve(*args, **kwargs):
        solution, calls["iterations"] = solve(*args, **kwargs)
        return solution, calls["iterations"]

    CGDs.acgd.Hvp_vec = CGDs.cgd_utils.Hvp_vec = counted_hvp
    CGDs.acgd.general_conjugate_gradient = counted_solve
    return CGDs.ACGD, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None, help="directory with MNIST's IDX files")
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6, help="timed steps of each optimizer (after one warm-up)")
    parser.add_argument("--tol", type=float, default=1e-6, help="relative residual of the CG solve, both packages")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    dataset = load_dataset("mnist", root=args.data_root, split=args.split)
    batches = BatchSampler(dataset, args.batch_size, seed=args.seed)
    value = get_objective("wgan").value
    ACGDReference, reference_calls = counting_cgds()

    g_ours, d_ours = networks(args.seed)
    g_cold, d_cold = copy.deepcopy(g_ours), copy.deepcopy(d_ours)
    g_ref, d_ref = copy.deepcopy(g_ours), copy.deepcopy(d_ours)
    g_adam, d_adam = copy.deepcopy(g_ours), copy.deepcopy(d_ours)
    initial = flat(g_ours, d_ours)  # the parameters before the first step
    beta, eps = 0.99, 1e-5
    ours = ACGD(min_params=g_ours.parameters(), max_params=d_ours.parameters(), lr=args.lr, beta=beta, eps=eps,
                tol=args.tol, atol=0.0)
    cold = ACGD(min_params=g_cold.parameters(), max_params=d_cold.parameters(), lr=args.lr, beta=beta, eps=eps,
                tol=args.tol, atol=0.0, warm_start=False)
    reference = ACGDReference(max_params=d_ref.parameters(), min_params=g_ref.parameters(), lr_max=args.lr,
                              lr_min=args.lr, beta=beta, eps=eps, tol=args.tol ** 2, atol=0.0)
    adam_g = torch.optim.Adam(g_adam.parameters(), lr=args.lr, betas=(0.5, 0.9))
    adam_d = torch.optim.Adam(d_adam.parameters(), lr=args.lr, betas=(0.5, 0.9))
    adam_params = [*g_adam.parameters(), *d_adam.parameters()]

    def acgd_step(optimizer, generator, discriminator):
        def step(real, z, t):
            optimizer.hyperparameters["eps"] = eps / math.sqrt(1 - beta ** t)  # CGDs' step sizes
            logs = optimizer.step(value(discriminator(real), discriminator(generator(z))))
            return int(logs["cg/iterations"]), int(logs["cg/hvps"])
        return step

    def reference_step(real, z, t):
        reference_calls["hvps"] = 0
        reference.step(value(d_ref(real), d_ref(g_ref(z))))
        return reference_calls["iterations"], reference_calls["hvps"]

    def adam_step(real, z, t):  # simultaneous gradient descent-ascent with Adam, one backward pass
        adam_g.zero_grad(set_to_none=True)
        adam_d.zero_grad(set_to_none=True)
        f = value(d_adam(real), d_adam(g_adam(z)))
        f.backward(inputs=adam_params)
        for p in d_adam.parameters():
            p.grad.neg_()  # the adversary ascends f
        adam_g.step()
        adam_d.step()
        return 0, 0

    runs = {"ours": acgd_step(ours, g_ours, d_ours), "ours, cold start": acgd_step(cold, g_cold, d_cold),
            "CGDs": reference_step, "adam": adam_step}
    seconds = {name: [] for name in runs}
    iterations = {name: [] for name in runs}
    hvps = {name: [] for name in runs}
    drifts = {"ours": [], "ours, cold start": []}  # |ours - CGDs| / |CGDs - initial| after each step
    for t in range(1, args.steps + 2):
        real, z = batches.next(), torch.randn(args.batch_size, g_ours.latent_dim)
        order = list(runs) if t % 2 else list(reversed(runs))
        for name in order:
            start = time.perf_counter()
            its, products = runs[name](real, z, t)
            elapsed = time.perf_counter() - start
            if t > 1:  # the first step is a warm-up (and has no CG warm start)
                seconds[name].append(elapsed)
                iterations[name].append(its)
                hvps[name].append(products)
        reference_now = flat(g_ref, d_ref)
        for name, modules in (("ours", (g_ours, d_ours)), ("ours, cold start", (g_cold, d_cold))):
            drifts[name].append(((flat(*modules) - reference_now).norm() / (reference_now - initial).norm()).item())
    median = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"ICR MNIST networks, WGAN value, batch {args.batch_size}, lr {args.lr}, CG tol {args.tol} (relative), "
          f"threads {args.threads}, {args.steps} steps each after a warm-up, interleaved")
    for name in ("ours", "ours, cold start", "CGDs"):
        print(f"  ACGD {name}: {median[name]:.3f} s/step (median), CG iterations {iterations[name]}, "
              f"Hessian-vector products {hvps[name]}")
    print(f"  Adam (both players): {median['adam'] * 1e3:.1f} ms/step (median)")
    for name in ("ours", "ours, cold start"):
        print(f"  ratio CGDs / {name}: {median['CGDs'] / median[name]:.2f} "
              f"(means {statistics.fmean(seconds['CGDs']) / statistics.fmean(seconds[name]):.2f}); "
              f"{name} / Adam: {median[name] / median['adam']:.1f}")
    for name, values in drifts.items():
        print(f"  |{name} - CGDs| / |CGDs - initial| over all parameters after steps 1 to {args.steps + 1}: "
              + ", ".join(f"{v:.1e}" for v in values))
    hvp_modes(g_ours, d_ours, batches, value, args.batch_size)


def hvp_modes(generator, discriminator, batches, value, batch_size: int, repeats: int = 3) -> None:
    """One mixed Hessian-vector product each way: reverse over reverse on the step's graph (what
    ACGD uses) against forward over reverse (torch.func.jvp of torch.func.grad, recomputing f)."""
    from torch.func import functional_call, grad, jvp

    real, z = batches.next(), torch.randn(batch_size, generator.latent_dim)
    g_params = dict(generator.named_parameters())
    d_params = dict(discriminator.named_parameters())
    g_buffers = dict(generator.named_buffers())

    def f(gp, dp):  # buffers copied: BatchNorm's running statistics must not move per product
        fake = functional_call(generator, (gp, {k: b.clone() for k, b in g_buffers.items()}), (z,))
        return value(functional_call(discriminator, dp, (real,)), functional_call(discriminator, dp, (fake,)))

    gp = {k: p.detach() for k, p in g_params.items()}
    dp = {k: p.detach() for k, p in d_params.items()}
    v = {k: torch.randn_like(p) for k, p in gp.items()}
    w = {k: torch.randn_like(p) for k, p in dp.items()}
    v_flat = torch.cat([t.flatten() for t in v.values()])
    w_flat = torch.cat([t.flatten() for t in w.values()])
    hessian = MixedHessian(f(g_params, d_params), list(g_params.values()), list(d_params.values()))
    timings = {
        "reverse over reverse, D_yx v": lambda: hessian.yx(v_flat),
        "reverse over reverse, D_xy w": lambda: hessian.xy(w_flat),
        "forward over reverse, D_yx v": lambda: jvp(lambda x: grad(f, argnums=1)(x, dp), (gp,), (v,))[1],
        "forward over reverse, D_xy w": lambda: jvp(lambda y: grad(f, argnums=0)(gp, y), (dp,), (w,))[1],
    }
    results = {name: [] for name in timings}
    for _ in range(repeats):
        for name, run in timings.items():
            start = time.perf_counter()
            run()
            results[name].append(time.perf_counter() - start)
    start = time.perf_counter()
    f(g_params, d_params)
    forward = time.perf_counter() - start
    print(f"mixed Hessian-vector products (median of {repeats}; one forward pass of f: {forward * 1e3:.0f} ms):")
    for name, values in results.items():
        print(f"  {name}: {statistics.median(values) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
