"""``equilibria classifier train NAME``: train (or find in the cache) a dataset's digit classifier."""

from __future__ import annotations

import argparse
import dataclasses
import time


def _train(args: argparse.Namespace) -> None:
    from equilibria.metrics.classifier import DEFAULT_SETTINGS, train_classifier

    base = "digits" if args.name == "digits" else "mnist"
    changes = {key: value for key, value in (("epochs", args.epochs), ("seed", args.seed)) if value is not None}
    settings = dataclasses.replace(DEFAULT_SETTINGS[base], **changes)
    start = time.perf_counter()
    trained = train_classifier(args.name, args.root, args.split, settings=settings, cache_dir=args.cache_dir,
                               progress=not args.no_progress)
    source = "found in the cache" if trained.from_cache else f"trained in {time.perf_counter() - start:.1f} s"
    print(f"{trained.dataset} classifier {source}: held-out accuracy {100 * trained.accuracy:.2f}% "
          f"({settings.holdout:.0%} of the data held out)")
    print(f"cached at {trained.path}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``classifier train`` to the ``equilibria`` command's subcommands."""
    classifier = subparsers.add_parser("classifier", help="dataset classifiers for offline FID and mode counting")
    commands = classifier.add_subparsers(dest="classifier_command", required=True, metavar="SUBCOMMAND")
    p = commands.add_parser("train", help="train a dataset's classifier deterministically and cache it")
    p.add_argument("name", choices=["digits", "mnist", "stacked_mnist"],
                   help="the dataset (stacked_mnist uses the MNIST classifier on each channel)")
    p.add_argument("--root", help="MNIST directory (default: $EQUILIBRIA_DATA, else ./data)")
    p.add_argument("--split", choices=["train", "test", "all"], default="train",
                   help="MNIST split to train and hold out from (default train)")
    p.add_argument("--epochs", type=int, help="training epochs (default: 15 for digits, 6 for MNIST)")
    p.add_argument("--seed", type=int, help="seed of initialisation, held-out split and data order (default 0)")
    p.add_argument("--cache-dir", help="cache directory (default: $EQUILIBRIA_CACHE, else ~/.cache/equilibria)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_train)
