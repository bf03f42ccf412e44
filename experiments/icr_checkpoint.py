"""ICR Figure 4: from a checkpoint that makes good images, train the discriminator alone and jointly.

Takes a finished run (the paper: configs/icr-mnist-simgd.yaml, stochastic SimGD, learning rate
0.01), restores its last checkpoint, fixes a probe set of real images and of images from the
checkpoint generator (500 each, Appendix A.3.1), and continues training twice with the same data and
noise: the discriminator alone (the generator's learning rate 0) and both players jointly. Writes
``stability.json``, ``stability.png`` (the discriminator's loss on the probe sets and the distances
of Eq. 5 against iterations) and prints a table.

At CPU scale (width 16, 3000 iterations; about 7 minutes, then 5 for this script):

    export EQUILIBRIA_DATA=../shared/data/mnist
    .venv/bin/equilibria train configs/icr-mnist-simgd.yaml --run-dir runs/icr-checkpoint/simgd \\
        --set data.split=test --set generator.width=16 --set discriminator.width=16 --set train.steps=3000 \\
        --set log.checkpoint_every=500 --set eval.every=500 --set eval.num_samples=1000 --set eval.metrics=fid
    .venv/bin/python experiments/icr_checkpoint.py runs/icr-checkpoint/simgd --steps 1000 --every 20

With several runs (one per seed: ``experiments/icr-checkpoint-sources.yaml`` trains them), each gets
its own outputs, and a summary over the seeds follows: the final output distances of the
discriminator alone and trained jointly, their paired difference with its 95% bootstrap interval,
the paired t-test and the verdict on the paper's claim (alone moves further), written to
``OUT/stability-summary.md``. A run whose record is already there with the same options is read back, not
analysed again, so a stopped study resumes at the run it stopped in:

    .venv/bin/equilibria experiment experiments/icr-checkpoint-sources.yaml
    .venv/bin/python experiments/icr_checkpoint.py runs/icr-checkpoint-sources/simgd/s* --steps 1000 \\
        --every 20 --out runs/icr-checkpoint-sources
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

from matplotlib.figure import Figure

from equilibria.data import BatchSampler
from equilibria.files import write_atomically
from equilibria.images import save_figure
from equilibria.training.run import fixed_noise, generate, restore_run
from equilibria.analysis.icr_checkpoint import train_from_checkpoint
from equilibria.analysis.per_run import analyse_runs, split_finite
from equilibria.statistics import compare_paired, mean_interval

MODES = {"discriminator alone": True, "jointly": False}


def plot(results: dict[str, list[dict[str, float]]], path: Path) -> Path:
    figure = Figure(figsize=(13, 4))
    for ax, key, label in zip(figure.subplots(1, 3), ("loss", "d_real", "d_fake"),
                              ("discriminator loss on the probe sets", "output distance, real set (Eq. 5)",
                               "output distance, generated set (Eq. 5)")):
        for mode, rows in results.items():
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=mode)
        ax.set_xlabel("iterations from the checkpoint")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    figure.axes[0].legend()
    figure.tight_layout()
    return save_figure(figure, path)


def analyse(run: Path, out: Path, args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """Figure 4 from one run's last checkpoint, its figure written to ``out``; the results by mode."""
    try:
        trainer, dataset, path = restore_run(run)
    except (ValueError, FileNotFoundError) as error:  # not a run directory, no checkpoint, missing data
        parser.error(str(error))
    if args.probe > len(dataset):
        parser.error(f"--probe: got {args.probe}; allowed: at most the dataset's {len(dataset)} samples")
    state = copy.deepcopy(trainer.state_dict())
    real = BatchSampler(dataset, args.probe, seed=args.seed + 1, value_range=trainer.generator.output_range,
                        device=trainer.device).next()
    fake = generate(trainer, fixed_noise(trainer, args.probe, args.seed))
    results = {mode: train_from_checkpoint(trainer, state, steps=args.steps, every=args.every, real=real, fake=fake,
                                           freeze_generator=frozen, seed=args.seed)
               for mode, frozen in MODES.items()}
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / "stability.png")
    print(f"from {path.name} of {run}; the figure: {out / 'stability.png'}")
    print("| iterations | mode | loss on probe sets | d_real | d_fake | weight distance |")
    print("| --- | --- | --- | --- | --- | --- |")
    marks = {0, args.steps // 10, args.steps // 2, args.steps}
    for mode, rows in results.items():
        for r in rows:
            if r["step"] in marks:
                print(f"| {r['step']} | {mode} | {r['loss']:.4f} | {r['d_real']:.3f} | {r['d_fake']:.3f} | "
                      f"{r['weights']:.3f} |")
    return {"checkpoint": path.name, "results": results}


def summarise(records: list[dict], steps: int) -> str:
    """The final distances over the runs: alone and jointly, and their paired difference."""
    kept, diverged = split_finite(records, lambda r: (row[key] for rows in r["results"].values() for row in rows
                                                      for key in ("loss", "d_real", "d_fake", "weights")))
    lines = [f"# ICR Figure 4 over {len(kept)} runs (final values after {steps} iterations)", ""]
    if diverged:
        lines += [f"Left out, a value not finite (the discriminator diverged): {', '.join(diverged)}.", ""]
    if len(kept) < 2:
        return "\n".join(lines + [f"Too few runs with finite values ({len(kept)}) for intervals and tests."]) + "\n"
    lines += ["| quantity | alone [95% CI] | jointly [95% CI] | alone - jointly [95% CI] | paired t p | "
              "the discriminator alone moves further |", "| --- | --- | --- | --- | --- | --- |"]
    for key in ("d_real", "d_fake", "weights"):
        alone = [r["results"]["discriminator alone"][-1][key] for r in kept]
        jointly = [r["results"]["jointly"][-1][key] for r in kept]
        a, j = mean_interval(alone), mean_interval(jointly)
        c = compare_paired(alone, jointly, lower_is_better=False)
        lines.append(f"| {key} | {a.mean:.3g} [{a.low:.3g}, {a.high:.3g}] | {j.mean:.3g} [{j.low:.3g}, {j.high:.3g}] | "
                     f"{c.difference:+.3g} [{c.low:+.3g}, {c.high:+.3g}] | {c.p_value:.2g} | **{c.verdict}** |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+",
                        help="run directories with checkpoints (simultaneous or alternating updates), one per seed")
    parser.add_argument("--steps", type=int, default=500, help="iterations from the checkpoint (default 500)")
    parser.add_argument("--every", type=int, default=10, help="measure every N iterations (default 10)")
    parser.add_argument("--probe", type=int, default=500, help="real and generated probe images each (default 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: the run directory; with several runs, OUT/<run name> each "
                             "and OUT/stability-summary.md)")
    args = parser.parse_args()
    for option in ("steps", "every", "probe"):
        if getattr(args, option) < 1:
            parser.error(f"--{option}: got {getattr(args, option)}; allowed: an integer >= 1")
    if len(args.runs) > 1 and args.out is None:
        parser.error("--out: several runs need an output directory for their summary")
    records = analyse_runs(args, "stability.json", lambda run, out: analyse(run, out, args, parser))
    if len(records) > 1:
        summary = summarise(records, args.steps)
        write_atomically(args.out / "stability-summary.md", lambda f: f.write(summary.encode()))
        print(summary)


if __name__ == "__main__":
    main()
