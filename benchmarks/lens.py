"""The lens's cost per iteration against the plain GAN (experiments/lens-stability.yaml's setting).

``Trainer.train_step`` of the study's groups original-nolens and original-lens (the DCGAN 32x32 on
MNIST without and with the lens: width 8, 8 residual blocks at full resolution, whose convolutions
outweigh the players'), configured as the experiment file does, each in the default memory format
and with ``train.channels_last``, interleaved in one process after warm-up; medians, and the ratios
lens / plain and channels_last / default. With ``--n-adv N`` > 1 (critic batches per iteration, as
WGAN-GP's 5), also the lens recording autograd on every critic batch, as it did before only the
last one kept its graph, against the trainer's own (channels_last both).

    .venv/bin/python benchmarks/lens.py --set data.root=../shared/data/mnist --threads 1
    .venv/bin/python benchmarks/lens.py --set data.root=../shared/data/mnist --threads 1 --n-adv 5
"""

from __future__ import annotations

import argparse

import torch

from equilibria.core.trainer import Trainer
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
    parser.add_argument("--n-adv", type=int, default=1, help="critic batches per iteration (train.n_adv)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    experiment = load_experiment(STUDY)
    trainers = {}
    for method, group in GROUPS.items():
        spec = experiment.groups[group]
        for layout, value in (("default", "false"), ("channels_last", "true")):
            overrides = [*experiment.overrides, *spec.overrides, f"train.channels_last={value}",
                         f"train.n_adv={args.n_adv}", f"threads={args.threads}", *args.set]
            trainers[f"{method} {layout}"] = build_trainer(load_config(spec.config, overrides))
    if args.n_adv > 1:  # the lens group in channels_last, its adversary updates all told they are the last
        spec = experiment.groups[GROUPS["lens"]]
        overrides = [*experiment.overrides, *spec.overrides, "train.channels_last=true", f"train.n_adv={args.n_adv}",
                     f"threads={args.threads}", *args.set]
        every = trainers["every batch tracked"] = build_trainer(load_config(spec.config, overrides))
        every._adversary_update = lambda diagnostics, last: Trainer._adversary_update(every, diagnostics, last=True)
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
    if args.n_adv > 1:
        ours, every = median["lens channels_last"], median["every batch tracked"]
        print(f"n_adv {args.n_adv}: the last batch's graph only {ours * 1e3:7.1f} ms  every batch's "
              f"{every * 1e3:7.1f} ms  ratio {ours / every:.2f}")


if __name__ == "__main__":
    main()
