"""``train.channels_last`` against the default memory format, per group of an experiment file.

For each group, ``Trainer.train_step`` of its config (the file's and the group's overrides) with and
without ``train.channels_last``, interleaved in one process after 2 warm-up iterations; medians and
the ratio channels_last / default. Whether the layout pays depends on the networks, the channels
and the machine, so measure before setting it in a study.

    .venv/bin/python benchmarks/channels_last.py experiments/stacked-mnist-modes.yaml \\
        --set data.root=../shared/data/mnist --threads 1
"""

from __future__ import annotations

import argparse

import torch

from equilibria.experiment import load_experiment
from equilibria.training.build import build_trainer
from equilibria.training.config import load_config
from interleaved import interleaved_medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", help="an experiment file")
    parser.add_argument("--groups", help="comma-separated groups (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of 3 iterations of each variant")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    experiment = load_experiment(args.file)
    names = args.groups.split(",") if args.groups else list(experiment.groups)
    unknown = [n for n in names if n not in experiment.groups]
    if unknown:
        parser.error(f"--groups: got {', '.join(unknown)}; allowed: {', '.join(experiment.groups)}")
    for name in names:
        spec = experiment.groups[name]
        overrides = [*experiment.overrides, *spec.overrides, f"threads={args.threads}", *args.set]
        trainers = {layout: build_trainer(load_config(spec.config, [*overrides, f"train.channels_last={layout}"]))
                    for layout in ("false", "true")}
        for trainer in trainers.values():
            for _ in range(2):
                trainer.train_step()
        median = interleaved_medians(trainers, args.rounds, per_round=3)
        print(f"{name:16s} default {median['false'] * 1e3:7.1f} ms  channels_last {median['true'] * 1e3:7.1f} ms  "
              f"channels_last / default {median['true'] / median['false']:.2f}", flush=True)


if __name__ == "__main__":
    main()
