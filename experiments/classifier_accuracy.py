"""Held-out accuracy and training time of the MNIST classifier, for a few seeds.

Trains on 80% of the MNIST split given (here the 10k test split, the only one on this machine)
and reports the accuracy on the 2000 held-out images; each seed also changes the held-out split.
Uses a temporary cache, so every seed really trains (one thread, as the training always does).

    .venv/bin/python experiments/classifier_accuracy.py --root ../shared/data/mnist --split test [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import torch

from equilibria.metrics.classifier import DEFAULT_SETTINGS, train_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="mnist")
    parser.add_argument("--root", default=None)
    parser.add_argument("--split", default="train")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as cache:
        for seed in args.seeds:
            settings = dataclasses.replace(DEFAULT_SETTINGS[args.dataset], seed=seed)
            start = time.perf_counter()
            trained = train_classifier(args.dataset, args.root, args.split, settings=settings, cache_dir=cache,
                                       progress=False)
            print(f"{args.dataset} seed {seed}: held-out accuracy {100 * trained.accuracy:.2f}%, "
                  f"trained in {time.perf_counter() - start:.1f} s ({settings.epochs} epochs)", flush=True)


if __name__ == "__main__":
    main()
