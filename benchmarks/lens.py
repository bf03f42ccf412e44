"""The lens's cost per iteration against the plain GAN (experiments/lens-stability.yaml's setting).

``Trainer.train_step`` of the DCGAN 32x32 on MNIST without and with the lens (width 8, 8 residual
blocks at full resolution: the lens's convolutions outweigh the players'), each in the default
memory format and with ``train.channels_last``, interleaved in one process after warm-up; medians,
and the ratios lens / plain and channels_last / default.

    .venv/bin/python benchmarks/lens.py --set data.root=../shared/data/mnist --threads 1
"""

from __future__ import annotations

import argparse

import torch

from equilibria.training.build import build_trainer
from equilibria.training.config import load_config
from interleaved import interleaved_medians

STUDY = ["data.split=test", "generator.width=16", "discriminator.width=16", "log.tensorboard=false"]
LENS = ["lens.width=8", "lens.anneal_steps=2500", "lens.reconstruction=mean", "lens.optim.lr=2.0e-4"]
CONFIGS = {"plain": "configs/lens-mnist-original-nolens.yaml", "lens": "configs/lens-mnist-original-lens.yaml"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10, help="rounds of 5 iterations of each variant")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trainers = {}
    for method, path in CONFIGS.items():
        for layout, extra in (("default", []), ("channels_last", ["train.channels_last=true"])):
            overrides = [*STUDY, *(LENS if method == "lens" else []), *extra, f"threads={args.threads}", *args.set]
            trainers[f"{method} {layout}"] = build_trainer(load_config(path, overrides))
    for trainer in trainers.values():
        for _ in range(3):
            trainer.train_step()
    median = interleaved_medians(trainers, args.rounds)
    for layout in ("default", "channels_last"):
        plain, lens = median[f"plain {layout}"], median[f"lens {layout}"]
        print(f"{layout:13s} plain {plain * 1e3:7.1f} ms  lens {lens * 1e3:7.1f} ms  lens / plain {lens / plain:.2f}")
    for method in CONFIGS:
        print(f"{method:5s} channels_last / default "
              f"{median[f'{method} channels_last'] / median[f'{method} default']:.2f}")


if __name__ == "__main__":
    main()
