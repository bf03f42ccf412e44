"""Compiled against eager on this CPU, per path (issue 12): ``Trainer.train_step`` of the same config
with ``train.compile`` false and true, and eager with ``train.channels_last`` (the convolutions'
weights and the image batches in channels_last memory format), interleaved in one process after
warm-up (the compilation itself is timed apart: the first path's includes Inductor's, later paths
reuse its kernels); medians, ratios to eager.

    .venv/bin/python benchmarks/compile.py --threads 1

Paths: the digits demo (non-saturating), WGAN-GP (the penalty's double backward stays eager), and
AdvAs in both modes (r stays eager; the generator's forward and the objective's are compiled).
"""

from __future__ import annotations

import argparse
import time

import torch

from equilibria.training.build import build_trainer
from equilibria.training.config import load_config
from interleaved import interleaved_medians

PATHS = {
    "plain": [],
    "wgan-gp": ["objective=wgan", "penalties.gradient_penalty=10"],
    "advas-hvp": ["objective=wgan", "penalties.gradient_penalty=10", "advas.enabled=true", "advas.mode=hvp"],
    "advas-exact": ["objective=wgan", "penalties.gradient_penalty=10", "advas.enabled=true", "advas.mode=exact"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10, help="rounds of 5 iterations of each variant")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated of {', '.join(PATHS)}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.paths.split(","):
        base = [f"threads={args.threads}", *PATHS[name]]
        trainers = {"eager": build_trainer(load_config(None, base)),
                    "compiled": build_trainer(load_config(None, [*base, "train.compile=true"])),
                    "channels_last": build_trainer(load_config(None, [*base, "train.channels_last=true"]))}
        compile_seconds = 0.0
        for variant, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(3):  # the compiled graphs: no-grad G, D, G + D and their backward passes
                trainer.train_step()
            if variant == "compiled":
                compile_seconds = time.perf_counter() - start
        median = interleaved_medians(trainers, args.rounds)
        print(f"{name:12s} eager {median['eager'] * 1e3:7.2f} ms  " + "  ".join(
            f"{v} {median[v] * 1e3:7.2f} ms ({median[v] / median['eager']:.2f}x)" for v in ("compiled", "channels_last"))
            + f"  (first 3 compiled iterations: {compile_seconds:.0f} s)")


if __name__ == "__main__":
    main()
