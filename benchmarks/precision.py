"""bf16 and fp16 autocast against fp32 on this CPU, per path (issue 12): ``Trainer.train_step`` of the
same config in each precision, interleaved in one process, medians; prints the ratios to fp32.

    .venv/bin/python benchmarks/precision.py --threads 1

Paths: the digits demo (non-saturating), WGAN-GP (the penalty stays fp32), and AdvAs (hvp; AdvAs
stays fp32, so only the players' own forward passes change). Whether the CPU has bf16 units
(avx512_bf16, amx_bf16 in /proc/cpuinfo) is printed: without them bf16 is emulated and slower.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from equilibria.training.build import build_trainer
from equilibria.training.config import load_config
from interleaved import interleaved_medians

PATHS = {
    "plain": [],
    "wgan-gp": ["objective=wgan", "penalties.gradient_penalty=10"],
    "advas": ["objective=wgan", "penalties.gradient_penalty=10", "advas.enabled=true", "advas.mode=hvp"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20, help="rounds of 5 iterations of each precision")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    units = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in cpuinfo.split()]
    print(f"bf16 units on this CPU: {', '.join(units) or 'none (bf16 is emulated)'}")
    for name, extra in PATHS.items():
        trainers = {p: build_trainer(load_config(None, [f"threads={args.threads}", f"train.precision={p}", *extra]))
                    for p in ("fp32", "bf16", "fp16")}
        for trainer in trainers.values():  # warm-up
            trainer.train_step()
        median = interleaved_medians(trainers, args.rounds)
        print(f"{name:8s} fp32 {median['fp32'] * 1e3:8.2f} ms  " + "  ".join(
            f"{p} {median[p] * 1e3:8.2f} ms ({median[p] / median['fp32']:.2f}x)" for p in ("bf16", "fp16")))


if __name__ == "__main__":
    main()
