"""``equilibria evaluate RUN_DIR``: score a run's generator against its dataset; a table and a JSON file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# the names of equilibria.metrics.evaluation, written here so that the help needs no torch (tests/test_cli.py
# checks that they agree)
METRICS = ("fid", "is", "kid", "pr", "modes")
EXTRACTORS = ("classifier", "inception")


def _metrics(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a comma-separated list of {', '.join(METRICS)}")
    return names


def _evaluate(args: argparse.Namespace) -> None:
    from equilibria.metrics.evaluation import default_extractor, evaluate
    from equilibria.training.build import dataset_of
    from equilibria.training.run import load_run_config
    from equilibria.training.sample import load_generator

    run_dir = Path(args.run_dir)
    config = load_run_config(run_dir)
    generator, step, ema = load_generator(run_dir, args.checkpoint, use_ema=not args.no_ema)
    dataset = dataset_of(config)
    value_range = generator.output_range or (-1.0, 1.0)
    extractor = None
    if dataset.kind == "image":
        extractor = default_extractor(dataset.name, args.extractor, value_range=value_range,
                                      data_root=config.data.root, data_split=config.data.split,
                                      cache_dir=args.cache_dir, progress=not args.no_progress)
    elif args.extractor is not None:
        raise ValueError(f"--extractor: {dataset.name} is a 2-D points dataset without feature extractors; "
                         "allowed: leave --extractor out")
    options = {} if args.kid_subset_size is None else {"kid_subset_size": args.kid_subset_size}
    scores = evaluate(generator, dataset, args.metrics, extractor, num_samples=args.num_samples,
                      reference_size=args.reference_size, batch_size=args.batch_size, seed=args.seed,
                      value_range=value_range, progress=not args.no_progress, data_split=config.data.split,
                      cache_dir=args.cache_dir, **options)
    width = max(map(len, scores))
    print(f"{run_dir} step {step} ({dataset.name}, {args.num_samples} samples"
          f"{', ' + extractor.name if extractor is not None else ''})")
    for name, value in scores.items():
        print(f"  {name:<{width}}  {value:.6g}")
    out = Path(args.out) if args.out else run_dir / "eval" / f"step-{step:08d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"run_dir": str(run_dir), "checkpoint": args.checkpoint or "latest", "step": step,
              "ema": ema, "dataset": dataset.name, "num_samples": args.num_samples, "seed": args.seed,
              "extractor": None if extractor is None else extractor.name, "scores": scores}
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {out}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` to the ``equilibria`` command's subcommands."""
    p = subparsers.add_parser("evaluate", help="FID, IS, KID, precision/recall and mode coverage of a run")
    p.add_argument("run_dir", help="the run directory (written by 'equilibria train')")
    p.add_argument("--checkpoint", help="a checkpoint file (default: the run's latest)")
    p.add_argument("--metrics", type=_metrics, default=None,
                   help=f"comma-separated, of {', '.join(METRICS)} (default: all that apply to the dataset)")
    p.add_argument("--num-samples", type=int, default=10_000, help="generated samples (default 10000)")
    p.add_argument("--reference-size", type=int, help="reference images (default: all, at most 10000)")
    p.add_argument("--extractor", choices=EXTRACTORS,
                   help="features for FID/KID/PR and logits for IS (default: classifier for digits, mnist and "
                        "stacked_mnist, inception otherwise)")
    p.add_argument("--kid-subset-size", type=int, help="KID subset size (default 1000)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per batch (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent codes and of KID's subsets")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator even if the run kept an EMA")
    p.add_argument("--cache-dir", help="cache directory (default: $EQUILIBRIA_CACHE, else ~/.cache/equilibria)")
    p.add_argument("--out", help="JSON file (default: RUN_DIR/eval/step-N.json)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_evaluate)
