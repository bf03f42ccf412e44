"""The GPU checks and the methods' iteration times at the papers' sizes, in one command (issue 12).

    PYTHONPATH=. python3 benchmarks/gpu.py                       # on a GPU machine, under 8 minutes
    PYTHONPATH=. python3 benchmarks/gpu.py --device cpu --tiny   # the same code on a CPU, small networks

1. The CUDA checks: ``pytest -m cuda`` (tests/test_cuda.py: each method on the GPU equals the CPU run;
   bf16, fp16 and compiled runs stay finite) in a subprocess, when pytest is installed and the device
   is a GPU.
2. One training iteration (``Trainer.train_step``) of each path at its paper's size, on random images
   of the paper's shape (the time does not depend on the pixels): fp32 eager, bf16 eager, fp32 and
   bf16 compiled, and fp32 with channels_last; median of ``--iterations`` after warm-up (which
   includes compilation), each iteration synchronised. One table: milliseconds, and each variant's
   ratio to fp32 eager.
3. With ``--profile``, where an fp32 eager iteration's time goes (torch.profiler over ``--iterations``
   iterations): wall time, the time the GPU's kernels ran, kernel launches and host-device
   synchronisations, each per iteration. Kernel time well below wall time means the iteration is
   bound by the host (Python and launches), so bf16 and larger batches cost little extra.

Paths: AdvAs Appendix E.1 networks on MNIST, WGAN-GP, batch 256, the baselines with n_adv 1 and 5
and AdvAs with n_adv 1 and 5; ICR's DCGAN 32x32 on CIFAR-10 with Adam (n_adv 5) and with ACGD (not
compiled: a joint update is refused, and it runs in fp32 whatever train.precision says); the lens
DCGAN on MNIST at 32x32 with its 8-block lens; VRAL's DCGAN 32x32 on CIFAR-10 with the
meta-discriminators.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch._dynamo
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from equilibria.data import Dataset
from equilibria.training.build import build_trainer
from equilibria.training.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
MNIST, MNIST32, CIFAR = (1, 28, 28), (1, 32, 32), (3, 32, 32)
PATHS = {  # name: (config file, overrides, image shape)
    "advas-e1 baseline n_adv=1": ("advas-mnist-wgangp-nadv1.yaml", [], MNIST),
    "advas-e1 baseline n_adv=5": ("advas-mnist-wgangp-nadv5.yaml", [], MNIST),
    "advas-e1 AdvAs n_adv=1": ("advas-mnist-wgangp-advas.yaml", ["advas.mode=hvp"], MNIST),
    "advas-e1 AdvAs n_adv=5": ("advas-mnist-wgangp-advas.yaml", ["advas.mode=hvp", "train.n_adv=5"], MNIST),
    "icr dcgan32 Adam": ("icr-cifar10-wgan-gp-adam.yaml", [], CIFAR),
    "icr dcgan32 ACGD": ("icr-cifar10-wgan-gp-acgd.yaml", [], CIFAR),
    "lens dcgan32": ("lens-mnist-original-lens.yaml", [], MNIST32),
    "vral dcgan32": ("vral-digits-vral.yaml", ["generator.arch=dcgan32", "discriminator.arch=dcgan32",
                                               "data.name=cifar10"], CIFAR),
}
TINY = ["generator.width=8", "discriminator.width=8", "train.batch_size=16", "lens.blocks=1", "lens.width=4"]
VARIANTS = {  # name: overrides
    "fp32": [],
    "bf16": ["train.precision=bf16"],
    "fp32 compiled": ["train.compile=true"],
    "bf16 compiled": ["train.compile=true", "train.precision=bf16"],
    "fp32 channels_last": ["train.channels_last=true"],
}


def random_images(shape: tuple[int, ...], n: int) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    return Dataset("random", torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=generator), None, "image")


def applies(config_file: str, variant: str) -> bool:
    """Compiled variants do not apply to a joint (CGD) update, which refuses train.compile."""
    return not ("compiled" in variant and "acgd" in config_file)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warmed_trainer(config_file: str, overrides: list[str], shape: tuple[int, ...], device: str, warmup: int):
    config = load_config(CONFIGS / config_file, [f"device={device}", *overrides])
    trainer = build_trainer(config, random_images(shape, 4 * config.train.batch_size))
    for _ in range(warmup):
        trainer.train_step()
    return trainer


def iteration_ms(config_file: str, overrides: list[str], shape: tuple[int, ...], device: str, warmup: int,
                 iterations: int) -> float:
    trainer = warmed_trainer(config_file, overrides, shape, device, warmup)
    times = []
    for _ in range(iterations):
        synchronise(trainer.device)
        start = time.perf_counter()
        trainer.train_step()
        synchronise(trainer.device)
        times.append(time.perf_counter() - start)
    trainer.check_finite(parameters=True)
    return 1e3 * statistics.median(times)


def profile_row(config_file: str, overrides: list[str], shape: tuple[int, ...], device: str, warmup: int,
                iterations: int) -> str:
    """Wall ms, GPU kernel ms, kernel launches and synchronisations per fp32 eager iteration."""
    trainer = warmed_trainer(config_file, overrides, shape, device, warmup)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda" else [])
    synchronise(trainer.device)
    with profile(activities=activities) as profiler:
        start = time.perf_counter()
        for _ in range(iterations):
            trainer.train_step()
        synchronise(trainer.device)
        wall = time.perf_counter() - start
    events = profiler.key_averages()
    wall_ms = 1e3 * wall / iterations
    if trainer.device.type != "cuda":
        return f"{wall_ms:12.2f} ms{'-':>16s}{'-':>12s}{'-':>12s}"
    kernel_ms = 1e-3 * sum(e.self_device_time_total for e in events if e.device_type == DeviceType.CUDA)
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cudaLaunchKernelExC"))
    syncs = sum(e.count for e in events if e.key == "cudaStreamSynchronize")  # a read of a GPU value
    return (f"{wall_ms:12.2f} ms{kernel_ms / iterations:13.2f} ms{launches / iterations:12.0f}"
            f"{syncs / iterations:12.1f}")


def cuda_checks(device: str) -> str:
    if torch.device(device).type != "cuda":
        return "not run (the device is not a GPU)"
    if importlib.util.find_spec("pytest") is None:
        return "not run (pytest is not installed)"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                           str(ROOT / "tests" / "test_cuda.py")], cwd=ROOT, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0:
        print(done.stdout[-6000:], done.stderr[-2000:], sep="\n")
    return ("passed: " if done.returncode == 0 else "FAILED: ") + (lines[-1] if lines else "no output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="small networks and batches (a test on a CPU)")
    parser.add_argument("--warmup", type=int, default=3, help="iterations before timing (compilation included)")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per variant")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated of the paths")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated of the variants")
    parser.add_argument("--no-checks", action="store_true", help="skip the CUDA checks")
    parser.add_argument("--profile", action="store_true",
                        help="also profile an fp32 eager iteration of each path: kernel time, launches, syncs")
    args = parser.parse_args()
    if torch.device(args.device).type == "cuda":
        if not torch.cuda.is_available():
            parser.error(f"--device {args.device}: CUDA is not available; allowed: cpu (with --tiny)")
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # as trained on GPUs
    started = time.perf_counter()
    name = torch.cuda.get_device_name(args.device) if torch.device(args.device).type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}")
    if not args.no_checks:
        print(f"CUDA checks (pytest -m cuda): {cuda_checks(args.device)}", flush=True)
    paths, variants = args.paths.split(","), args.variants.split(",")
    for option, names, allowed in (("--paths", paths, PATHS), ("--variants", variants, VARIANTS)):
        unknown = [name for name in names if name not in allowed]
        if unknown:
            parser.error(f"{option}: unknown {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    print(f"{'path':27s}" + "".join(f"{v:>22s}" for v in variants))
    for path in paths:
        config_file, overrides, shape = PATHS[path]
        overrides = [*overrides, *(TINY if args.tiny else [])]
        cells, fp32 = [], None
        torch._dynamo.reset()  # each path's compiled graphs apart, so that guards stay few
        for variant in variants:
            extra = VARIANTS[variant]
            if not applies(config_file, variant):
                cells.append(f"{'-':>22s}")
                continue
            ms = iteration_ms(config_file, [*overrides, *extra], shape, args.device, args.warmup, args.iterations)
            fp32 = ms if fp32 is None else fp32
            cells.append(f"{ms:12.2f} ms ({ms / fp32:4.2f}x)")
        print(f"{path:27s}" + "".join(cells), flush=True)
    if args.profile:
        print(f"{'fp32 eager, per iteration':27s}{'wall':>15s}{'GPU kernels':>16s}{'launches':>12s}{'syncs':>12s}")
        for path in paths:
            config_file, overrides, shape = PATHS[path]
            overrides = [*overrides, *(TINY if args.tiny else [])]
            row = profile_row(config_file, overrides, shape, args.device, args.warmup, args.iterations)
            print(f"{path:27s}{row}", flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
