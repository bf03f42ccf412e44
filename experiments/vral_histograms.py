"""VRAL Figure 3: histograms of the discriminator's raw outputs on real and generated data, per run.

Reads an experiment's output directory (``OUT/<group>/s<seed>``, e.g. runs/vral-ratios-digits), loads
each group's last checkpoint for one seed, and draws one panel per group: the histogram of D's raw
outputs on ``--samples`` real images and on as many generated ones (generator in eval mode), with
their means and standard deviations. Writes ``OUT/histograms-s<seed>.png`` and prints a table.

    .venv/bin/python experiments/vral_histograms.py runs/vral-ratios-digits [--seed 0] [--samples 1000]
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import torch
from matplotlib.figure import Figure

from equilibria.data import BatchSampler
from equilibria.images import save_figure
from equilibria.metrics.diagnostics import OutputStatistics, output_statistics
from equilibria.training.run import fixed_noise, generate, restore_run


def run_statistics(run: Path, samples: int, bins: int = 40) -> OutputStatistics:
    """D's raw-output statistics at the run's last checkpoint, with bins spanning both sets' outputs."""
    trainer, dataset, _ = restore_run(run)
    real = BatchSampler(dataset, min(samples, len(dataset)), seed=1, value_range=trainer.generator.output_range,
                        device=trainer.device).next()
    fake = generate(trainer, fixed_noise(trainer, samples, 0))
    return output_statistics(trainer.discriminator.eval(), real, fake, edges=bins)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="an experiment's output directory")
    parser.add_argument("--seed", type=int, default=0, help="which seed's runs (default 0)")
    parser.add_argument("--samples", type=int, default=1000, help="real and generated samples each (default 1000)")
    parser.add_argument("--columns", type=int, default=4, help="panels per row (default 4)")
    args = parser.parse_args()
    if args.samples < 2:
        parser.error(f"--samples: got {args.samples}; allowed: an integer >= 2")
    if args.columns < 1:
        parser.error(f"--columns: got {args.columns}; allowed: an integer >= 1")
    torch.set_num_threads(1)
    runs = sorted((p for p in args.out.glob(f"*/s{args.seed}") if (p / "config.yaml").is_file()),
                  key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.parent.name)])
    if not runs:
        raise SystemExit(f"{args.out}: no runs */s{args.seed} with a config.yaml")
    rows = math.ceil(len(runs) / args.columns)
    figure = Figure(figsize=(3.2 * args.columns, 2.6 * rows))
    axes = figure.subplots(rows, args.columns, squeeze=False).flatten()
    print("| group | mean on real | std on real | mean on generated | std on generated |")
    print("| --- | --- | --- | --- | --- |")
    for ax, run in zip(axes, runs):
        try:
            stats = run_statistics(run, args.samples)
        except (ValueError, FileNotFoundError) as error:  # not a run directory, no checkpoint, missing data
            parser.error(f"{run}: {error}")
        centres = (stats.edges[:-1] + stats.edges[1:]) / 2
        width = stats.edges[1] - stats.edges[0]
        ax.bar(centres, stats.hist_real, width=width, alpha=0.6, label="real")
        ax.bar(centres, stats.hist_fake, width=width, alpha=0.6, label="generated")
        group = run.parent.name
        ax.set_title(group, fontsize=9)
        ax.tick_params(labelsize=7)
        print(f"| {group} | {stats.mean_real:.3f} | {math.sqrt(stats.var_real):.3f} | {stats.mean_fake:.3f} | "
              f"{math.sqrt(stats.var_fake):.3f} |")
    for ax in axes[len(runs):]:
        ax.axis("off")
    axes[0].legend(fontsize=7)
    figure.suptitle(f"raw discriminator outputs, {args.out.name}, seed {args.seed}")
    figure.tight_layout()
    path = save_figure(figure, args.out / f"histograms-s{args.seed}.png")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
