"""Does the discriminator overfit its training images? Its outputs on them against held-out ones, over a run.

The check of Karras et al. (2020, "Training generative adversarial networks with limited data",
Section 2): a discriminator that memorises its training set scores its training images above held-out
images of the same distribution, and the gap grows as FID rises. Here for the lens-stability runs,
whose FID rises after its best in every run (with the lens and without; docs/RESULTS.md): train a
run on the first N images of a dataset (``data.num_samples=N``), then, at each of its checkpoints, D's
mean raw output (eval mode) on ``--samples`` of its training images, on the held-out images (those
after the first N, up to ``--samples``) and on as many generated ones, with the run's FID at that step.

    EQUILIBRIA_DATA=../shared/data/mnist equilibria train runs/lens-stability/original-nolens/s3/config.yaml \\
        --run-dir runs/d-overfitting/original-nolens-s3-first8000 --set data.num_samples=8000 \\
        --set train.steps=40000 --set log.checkpoint_every=2500 --set log.keep_checkpoints=16 --set eval.every=1000
    EQUILIBRIA_DATA=../shared/data/mnist .venv/bin/python experiments/discriminator_overfitting.py \\
        runs/d-overfitting/original-nolens-s3-first8000 [--samples 2000]

Prints a markdown table, one row per checkpoint, and writes ``RUN/discriminator-overfitting.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from matplotlib.figure import Figure

from equilibria.data import BatchSampler
from equilibria.data.dataset import Dataset
from equilibria.images import save_figure
from equilibria.report import load_metrics, value_at
from equilibria.training import checkpoint
from equilibria.training.build import build_trainer, dataset_of
from equilibria.training.run import fixed_noise, generate, load_run_config


@torch.no_grad()
def mean_output(discriminator: torch.nn.Module, x: torch.Tensor, batch: int = 500) -> float:
    """D's mean raw output over ``x`` (in batches, eval mode)."""
    return float(torch.cat([discriminator(x[i:i + batch]).flatten() for i in range(0, len(x), batch)]).mean())


def held_out_images(run: Path, samples: int) -> tuple[Dataset, Dataset]:
    """The run's training set (its first ``data.num_samples`` images) and up to ``samples`` images after them."""
    config = load_run_config(run)
    trained = config.data.num_samples
    if trained is None:
        raise SystemExit(f"{run}: trained on the whole dataset (data.num_samples is null); nothing is held out")
    training = dataset_of(config)
    whole = dataset_of(config.model_copy(update={"data": config.data.model_copy(update={"num_samples": None})}))
    held = dataclasses.replace(whole, data=whole.data[trained:trained + samples],
                               labels=None if whole.labels is None else whole.labels[trained:trained + samples])
    if not len(held.data):
        raise SystemExit(f"{run}: data.num_samples={trained} keeps all {len(whole.data)} images; nothing is held out")
    return training, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run directory trained on data.num_samples images")
    parser.add_argument("--samples", type=int, default=2000, help="images of each kind (default 2000)")
    args = parser.parse_args()
    if args.samples < 1:
        parser.error(f"--samples: got {args.samples}; allowed: an integer >= 1")
    torch.set_num_threads(1)
    paths = checkpoint.checkpoints(args.run / "checkpoints")
    if not paths:
        parser.error(f"{args.run}: no checkpoints")
    config = load_run_config(args.run)
    training, held = held_out_images(args.run, args.samples)
    trainer = build_trainer(config, training)
    value_range = trainer.generator.output_range
    real_trained, real_held = (BatchSampler(images, len(held.data), seed=0, value_range=value_range).next()
                               for images in (training, held))  # as training maps them; all the held-out ones
    records = load_metrics(args.run)
    logs_fid = any("eval/fid" in r for r in records)  # else the FID column is nan
    rows = []
    print(f"| step | FID | D on training images | D on held-out images | training - held-out | D on generated |"
          f" training - generated |\n| --- | --- | --- | --- | --- | --- | --- |")
    for path in paths:
        state = checkpoint.load(path)
        checkpoint.restore(trainer, state, path)
        fake = generate(trainer, fixed_noise(trainer, len(held.data), 0))
        discriminator = trainer.discriminator.eval()
        on_trained, on_held, on_fake = (mean_output(discriminator, x) for x in (real_trained, real_held, fake))
        fid = value_at(records, "eval/fid", state.step, str(args.run)) if logs_fid else float("nan")
        rows.append((state.step, fid, on_trained, on_held, on_fake))
        print(f"| {state.step} | {fid:.1f} | {on_trained:.3f} | {on_held:.3f} | {on_trained - on_held:+.3f} | "
              f"{on_fake:.3f} | {on_trained - on_fake:+.3f} |", flush=True)
    figure = Figure(figsize=(10, 3.8))
    left, right = figure.subplots(1, 2)
    steps = [r[0] for r in rows]
    left.plot(steps, [r[2] - r[3] for r in rows], marker="o", label="training - held-out images")
    left.plot(steps, [r[2] - r[4] for r in rows], marker="o", label="training - generated images")
    left.set_ylabel("difference of D's mean raw outputs")
    left.legend(fontsize=8)
    right.plot(steps, [r[1] for r in rows], marker="o")
    right.set_ylabel("FID (log scale)")
    right.set_yscale("log")
    for ax in (left, right):
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    figure.suptitle(f"discriminator overfitting: {args.run.name} ({len(training.data)} training images, "
                    f"{len(held.data)} held out)")
    figure.tight_layout()
    print(f"written to {save_figure(figure, args.run / 'discriminator-overfitting.png')}")


if __name__ == "__main__":
    main()
