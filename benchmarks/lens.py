"""The lens's cost per iteration against the plain GAN (experiments/lens-stability.yaml's setting).

``Trainer.train_step`` of the study's groups original-nolens and original-lens (the DCGAN 32x32 on
MNIST without and with the lens: width 8, 8 residual blocks at full resolution, whose convolutions
outweigh the players'), configured as the experiment file does, each in the default memory format
and with ``train.channels_last``, interleaved in one process after warm-up; medians, and the ratios
lens / plain and channels_last / default.

    .venv/bin/python benchmarks/lens.py --set data.root=../shared/data/mnist --threads 1
"""

from __future__ import annotations

import argparse

import torch

from equilibria.experiment import load_experiment
from equilibria.training.build import build_trainer
from equilibria.training.config import load_config
from interleaved import interleaved_medians

STUDY = "experiments/lens-stability.yaml"
GROUPS = {"plain": "original-nolens", "lens": "original-lens"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10, help="rounds of 5 iterations of each variant")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    experiment = load_experiment(STUDY)
    trainers = {}
    for method, group in GROUPS.items():
        spec = experiment.groups[group]
        for layout, value in (("default", "false"), ("channels_last", "true")):
            overrides = [*experiment.overrides, *spec.overrides, f"train.channels_last={value}",
                         f"threads={args.threads}", *args.set]
            trainers[f"{method} {layout}"] = build_trainer(load_config(spec.config, overrides))
    for trainer in trainers.values():
        for _ in range(3):
            trainer.train_step()
    median = interleaved_medians(trainers, args.rounds)
    for layout in ("default", "channels_last"):
        plain, lens = median[f"plain {layout}"], median[f"lens {layout}"]
        print(f"{layout:13s} plain {plain * 1e3:7.1f} ms  lens {lens * 1e3:7.1f} ms  lens / plain {lens / plain:.2f}")
    for method in GROUPS:
        print(f"{method:5s} channels_last / default "
              f"{median[f'{method} channels_last'] / median[f'{method} default']:.2f}")


if __name__ == "__main__":
    main()
