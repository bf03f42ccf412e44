"""ICR Figure 5: a fresh discriminator learns slower against better generators.

Each run's kept checkpoints are generators of rising quality (``experiments/icr-checkpoint-sources.yaml``
keeps one every 250 steps on MNIST; ``experiments/icr-sources-cifar10.yaml`` is the paper's CIFAR-10
setting, for users with the data). Per run: the run's discriminator architecture, newly initialised,
is trained on the dataset's classes (``--pretrain`` steps on all images but a held-out ``--probe``);
with a fresh score layer it is the same starting point against every generator of the run. Against
each fixed generator it is trained ``--steps`` Adam steps (learning rate 2e-4, betas (0.5, 0.999),
batch 64 real and 64 generated) and its accuracy of held-out real against generated images measured
every ``--every`` steps; the rate is the mean accuracy over the curve (the area under it per step).
The generator's quality is the run's own evaluation at the checkpoint's step (``--quality``,
default eval/fid, so the run must evaluate at its checkpoint steps).

The claim (the paper on CIFAR-10 with the Inception score): the rate is inversely correlated with
quality, so Spearman's rho between the rate and FID is positive (with IS: negative). Per run, rho
over its generators; over runs, the mean rho with its 95% bootstrap interval, the one-sample t-test
and the verdict; the pooled rho of all generators beside it (Spearman's p, which treats the
generators as independent). Writes ``fresh-discriminator.json`` per run and, over the runs,
``OUT/fresh-discriminator-summary.md`` and ``OUT/fresh-discriminator.png``. A run whose record is already
there with the same options is read back, not analysed again, so a stopped study resumes where it stopped:

    EQUILIBRIA_DATA=../shared/data/mnist .venv/bin/python experiments/icr_fresh_discriminator.py \\
        runs/icr-checkpoint-sources/simgd/s* --out runs/icr-fresh-discriminator
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats

from equilibria.analysis.icr_fresh_discriminator import (classifier_start, fresh_discriminator, learning_curve,
                                                         learning_rate)
from equilibria.analysis.per_run import analyse_runs
from equilibria.files import write_atomically
from equilibria.images import save_figure
from equilibria.report import HIGHER_IS_BETTER, load_metrics
from equilibria.statistics import Interval, mean_interval, verdict
from equilibria.training import checkpoint
from equilibria.training.run import generate, restore_run


def analyse(run: Path, args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """Figure 5 for one run: per kept checkpoint (``generators``), its step, quality, accuracy curve and rate."""
    try:
        trainer, dataset, _ = restore_run(run)
    except (ValueError, FileNotFoundError) as error:  # not a run directory, no checkpoint, missing data
        parser.error(str(error))
    if dataset.kind != "image" or dataset.labels is None or int(dataset.labels.max()) > 9:
        parser.error(f"{run}: dataset {dataset.name} has no digit or class labels 0..9 to pretrain on; allowed: "
                     "mnist, digits, cifar10")
    if args.probe >= len(dataset):
        parser.error(f"--probe: got {args.probe}; allowed: fewer than the dataset's {len(dataset)} images")
    quality = {r["step"]: r[args.quality] for r in load_metrics(run) if isinstance(r.get(args.quality), (int, float))}
    paths = checkpoint.checkpoints(run / "checkpoints")
    if len(paths) < 3:
        parser.error(f"{run}: {len(paths)} kept checkpoint(s); allowed: at least 3 for a rank correlation "
                     "(log.keep_checkpoints)")
    missing = [checkpoint.step_of(p) for p in paths if checkpoint.step_of(p) not in quality]
    if missing:
        parser.error(f"--quality: {run} has no {args.quality} at the checkpoint steps {missing}; allowed: a metric "
                     "the run evaluated at every checkpoint's step")
    low, high = trainer.generator.output_range
    images = dataset.data.float() * ((high - low) / 255) + low
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(args.seed))
    held, train = order[:args.probe], order[args.probe:]
    start, accuracy = classifier_start(trainer.discriminator, images[train], dataset.labels[train], steps=args.pretrain,
                                       seed=args.seed, test=(images[held], dataset.labels[held]))
    print(f"{run}: the discriminator's architecture trained on the classes, held-out accuracy {accuracy:.3f}")
    fresh = fresh_discriminator(start, args.seed)
    results = []
    for path in paths:
        trainer.generator.load_state_dict(checkpoint.load(path).generator_weights())
        noise = torch.Generator().manual_seed(args.seed + 1)

        def sample(n: int) -> torch.Tensor:
            return generate(trainer, torch.randn(n, trainer.generator.latent_dim, generator=noise))

        test_fake = generate(trainer, torch.randn(args.probe, trainer.generator.latent_dim,
                                                  generator=torch.Generator().manual_seed(args.seed + 2)))
        curve = learning_curve(fresh, images[train], sample, test_real=images[held], test_fake=test_fake,
                               steps=args.steps, every=args.every, seed=args.seed)
        step = checkpoint.step_of(path)
        results.append({"step": step, "quality": quality[step], "rate": learning_rate(curve), "curve": curve})
        print(f"  step {step}: {args.quality} {quality[step]:.4g}, rate {results[-1]['rate']:.4f}, "
              f"accuracy {curve[0]['accuracy']:.3f} -> {curve[-1]['accuracy']:.3f}", flush=True)
    return {"quality": args.quality, "pretrain_accuracy": accuracy, "generators": results}


def summarise(all_results: list[list[dict]], metric: str) -> str:
    """Spearman's rho between the rate and the quality metric, per run and pooled, and the verdict."""
    higher_is_better = metric.endswith(HIGHER_IS_BETTER)
    rhos = [stats.spearmanr([g["quality"] for g in run], [g["rate"] for g in run]).statistic for run in all_results]
    pooled = stats.spearmanr([g["quality"] for run in all_results for g in run],
                             [g["rate"] for run in all_results for g in run])
    finite = [r for r in rhos if np.isfinite(r)]  # a run whose rates or qualities are all equal has no rho
    interval = mean_interval(finite) if finite else Interval(float("nan"), float("nan"), float("nan"), 0)
    p_value = float(stats.ttest_1samp(finite, 0.0).pvalue) if len(finite) > 1 else float("nan")
    # the claim: the better the generator, the slower; so rho < 0 with a higher-is-better metric
    holds = verdict(interval.low, interval.high, p_value, lower_is_better=higher_is_better)
    sign = "negative" if higher_is_better else "positive"
    return "\n".join([
        f"# ICR Figure 5 over {len(all_results)} runs ({sum(map(len, all_results))} generators): "
        f"Spearman's rho between the fresh discriminator's rate and {metric}", "",
        f"The claim: a fresh discriminator learns slower against better generators, so rho is {sign}. "
        f"Runs without a rho (all rates or qualities equal): {len(rhos) - len(finite)}.", "",
        "| rho per run | mean rho [95% CI] | t-test p | pooled rho (Spearman p) | verdict |",
        "| --- | --- | --- | --- | --- |",
        f"| {', '.join(f'{r:+.2f}' for r in rhos)} | "
        f"{interval.mean:+.3f} [{interval.low:+.3f}, {interval.high:+.3f}] | "
        f"{p_value:.2g} | {pooled.statistic:+.3f} ({pooled.pvalue:.2g}) | **{holds}** |"]) + "\n"


def plot(all_results: list[list[dict]], metric: str, path: Path) -> Path:
    figure = Figure(figsize=(12, 4.2))
    curves_ax, rates_ax = figure.subplots(1, 2)
    first = all_results[0]
    colours = np.linspace(0.1, 0.9, len(first))
    for shade, generator in zip(colours, sorted(first, key=lambda g: g["quality"])):
        curve = generator["curve"]
        curves_ax.plot([r["step"] for r in curve], [r["accuracy"] for r in curve], color=(shade, 0.2, 1 - shade),
                       label=f"{metric} {generator['quality']:.0f} (step {generator['step']})")
    curves_ax.set_xlabel("steps of the fresh discriminator")
    curves_ax.set_ylabel("accuracy, held-out real against generated")
    curves_ax.set_title("first run: one curve per generator", fontsize=10)
    curves_ax.legend(fontsize=6)
    for i, run in enumerate(all_results):
        rates_ax.scatter([g["quality"] for g in run], [g["rate"] for g in run], s=14, label=f"run {i}")
    rates_ax.set_xlabel(f"the generator's {metric}")
    rates_ax.set_ylabel("rate: mean accuracy over the curve")
    rates_ax.set_title("ICR Figure 5: rate against generator quality", fontsize=10)
    if metric.endswith("fid"):
        rates_ax.set_xscale("log")
    for ax in (curves_ax, rates_ax):
        ax.grid(alpha=0.3)
    rates_ax.legend(fontsize=7)
    figure.tight_layout()
    return save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run directories whose kept checkpoints are the generators")
    parser.add_argument("--out", type=Path, required=True,
                        help="output directory (OUT/<run name> per run; OUT itself for a single run)")
    parser.add_argument("--quality", default="eval/fid",
                        help="the run's metric of generator quality (default eval/fid)")
    parser.add_argument("--pretrain", type=int, default=1500, help="class-training steps, batch 64 (default 1500)")
    parser.add_argument("--steps", type=int, default=200, help="steps of each fresh discriminator (default 200)")
    parser.add_argument("--every", type=int, default=10, help="measure the accuracy every N steps (default 10)")
    parser.add_argument("--probe", type=int, default=500, help="held-out real and generated images (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for option in ("pretrain", "steps", "every", "probe"):
        if getattr(args, option) < 1:
            parser.error(f"--{option}: got {getattr(args, option)}; allowed: an integer >= 1")
    torch.set_num_threads(1)
    records = analyse_runs(args, "fresh-discriminator.json", lambda run, _: analyse(run, args, parser))
    all_results = [r["generators"] for r in records]
    summary = summarise(all_results, args.quality)
    write_atomically(args.out / "fresh-discriminator-summary.md", lambda f: f.write(summary.encode()))
    plot(all_results, args.quality, args.out / "fresh-discriminator.png")
    print(summary)


if __name__ == "__main__":
    main()
