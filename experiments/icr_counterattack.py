"""ICR Figure 8: the generator strikes back at an over-trained discriminator.

From a finished run's last checkpoint (the Figure 4 checkpoint: ``experiments/icr-checkpoint-sources.yaml``
trains one per seed), three discriminators: the checkpoint's; one over-trained against the frozen
checkpoint generator for ``--overtrain`` iterations with the run's optimizer (as in Figure 4: stochastic
SGD, learning rate 0.01); and one over-trained as long with CGD (step size: the run's discriminator
learning rate; each step's generator move discarded). Against each, the checkpoint generator is
trained alone for ``--steps`` iterations with the run's generator optimizer, and the discriminator's
loss on 500 real images and on the generator's images of 500 fixed latent codes is recorded. The
paper: the over-trained discriminator's loss rises fast, the checkpoint's slowly, and the one
over-trained with CGD is more robust still. All three counterattacks see the same batches and noise.
``--with-adam LR`` over-trains with Adam instead (the paper's Figure 4 setting is unstated; Adam
reaches a lower loss in as many iterations) and, for the competitive one, with ACGD (alpha LR).

Writes ``counterattack.json`` and ``counterattack.png`` per run; with several runs, the rise of the
loss over the counterattack per discriminator, the paired differences with their 95% bootstrap
intervals, the paired t-tests and the verdicts, to ``OUT/counterattack-summary.md`` and
``OUT/counterattack.png``. A run whose record is already there with the same options is read back, not
analysed again, so a stopped study resumes at the run it stopped in:

    EQUILIBRIA_DATA=../shared/data/mnist .venv/bin/equilibria experiment experiments/icr-checkpoint-sources.yaml
    .venv/bin/python experiments/icr_counterattack.py runs/icr-checkpoint-sources/simgd/s* \\
        --out runs/icr-counterattack
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from equilibria.analysis.icr_checkpoint import train_from_checkpoint
from equilibria.analysis.icr_counterattack import counterattack, overtrain_alone, overtrain_with_cgd
from equilibria.analysis.per_run import analyse_runs, split_finite
from equilibria.data import BatchSampler
from equilibria.files import write_atomically
from equilibria.images import save_figure
from equilibria.statistics import compare_paired, mean_interval
from equilibria.training.run import fixed_noise, generate, restore_run

CHECKPOINT, OVERTRAINED, CGD = "checkpoint", "over-trained alone", "over-trained with CGD"
# (the claim, discriminator a, discriminator b, lower_is_better for a's rise against b's)
CLAIMS = (("the over-trained discriminator's loss rises faster than the checkpoint's", OVERTRAINED, CHECKPOINT, False),
          ("the discriminator over-trained with CGD is more robust than the checkpoint's", CGD, CHECKPOINT, True),
          ("over-training with CGD leaves it more robust than alone", CGD, OVERTRAINED, True))


def analyse(run: Path, out: Path, args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """Figure 8 from one run's last checkpoint, its figure written to ``out``; the curves by discriminator."""
    try:
        trainer, dataset, path = restore_run(run)
    except (ValueError, FileNotFoundError) as error:  # not a run directory, no checkpoint, missing data
        parser.error(str(error))
    if trainer.g_optimizer is None:
        parser.error(f"{run}: the run uses a joint optimizer; allowed: a run with an optimizer per player")
    state = copy.deepcopy(trainer.state_dict())
    real = BatchSampler(dataset, args.probe, seed=args.seed + 1, value_range=trainer.generator.output_range,
                        device=trainer.device).next()
    noise = fixed_noise(trainer, args.probe, args.seed)
    if args.with_adam:
        overtrained = overtrain_alone(trainer, state, steps=args.overtrain, seed=args.seed,
                                      optimizer=lambda params: torch.optim.Adam(params, lr=args.with_adam))
        competitive = overtrain_with_cgd(trainer, state, steps=args.overtrain, seed=args.seed, lr=args.with_adam,
                                         adaptive=True)
    else:
        train_from_checkpoint(trainer, state, steps=args.overtrain, every=args.overtrain, real=real,
                              fake=generate(trainer, noise), freeze_generator=True, seed=args.seed)
        overtrained = copy.deepcopy(trainer.discriminator.state_dict())
        competitive = overtrain_with_cgd(trainer, state, steps=args.overtrain, seed=args.seed,
                                         lr=args.cgd_lr or trainer.d_optimizer.param_groups[0]["lr"])
    discriminators = {CHECKPOINT: state["discriminator"], OVERTRAINED: overtrained, CGD: competitive}
    curves = {name: counterattack(trainer, state, weights, steps=args.steps, every=args.every, real=real, noise=noise,
                                  seed=args.seed + 2) for name, weights in discriminators.items()}
    out.mkdir(parents=True, exist_ok=True)
    plot([curves], out / "counterattack.png")
    print(f"from {path.name} of {run}: discriminator loss before -> after {args.steps} generator iterations: "
          + "; ".join(f"{name} {rows[0]['loss']:.4f} -> {rows[-1]['loss']:.4f}" for name, rows in curves.items()))
    return {"checkpoint": path.name, "curves": curves}


def plot(all_curves: list[dict[str, list[dict]]], path: Path) -> Path:
    """The discriminators' losses against generator iterations: each run thin, the mean thick."""
    figure = Figure(figsize=(6.5, 4))
    ax = figure.subplots()
    for colour, name in zip(("tab:grey", "tab:red", "tab:blue"), (CHECKPOINT, OVERTRAINED, CGD)):
        steps = [r["step"] for r in all_curves[0][name]]
        losses = np.array([[r["loss"] for r in curves[name]] for curves in all_curves])
        if len(all_curves) > 1:
            for row in losses:
                ax.plot(steps, row, color=colour, alpha=0.25, linewidth=0.8)
        ax.plot(steps, losses.mean(0), color=colour, linewidth=2, label=name)
    ax.set_xlabel("generator iterations against the fixed discriminator")
    ax.set_ylabel("discriminator loss on the probe sets")
    ax.set_title(f"ICR Figure 8: the generator strikes back ({len(all_curves)} run(s))", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def summarise(records: list[dict], steps: int) -> str:
    """The loss's rise over the counterattack per discriminator, and the claims as paired comparisons."""
    kept, diverged = split_finite(records, lambda r: (row["loss"] for rows in r["curves"].values() for row in rows))
    lines = [f"# ICR Figure 8 over {len(kept)} runs: the discriminator's loss over {steps} generator iterations", ""]
    if diverged:
        lines += [f"Left out, a loss not finite (the counterattack diverged): {', '.join(diverged)}.", ""]
    if len(kept) < 2:
        return "\n".join(lines + [f"Too few runs with finite losses ({len(kept)}) for intervals and tests."]) + "\n"
    all_curves = [r["curves"] for r in kept]
    rise = {name: [c[name][-1]["loss"] - c[name][0]["loss"] for c in all_curves] for name in all_curves[0]}
    lines += ["| discriminator | loss before [95% CI] | loss after [95% CI] | rise [95% CI] |",
              "| --- | --- | --- | --- |"]
    for name in all_curves[0]:
        cells = [mean_interval([c[name][i]["loss"] for c in all_curves]) for i in (0, -1)] + [mean_interval(rise[name])]
        lines.append(f"| {name} | " + " | ".join(f"{x.mean:.4g} [{x.low:.4g}, {x.high:.4g}]" for x in cells) + " |")
    lines += ["", "| claim (on the rise) | a - b [95% CI] | paired t p | verdict |", "| --- | --- | --- | --- |"]
    for claim, a, b, lower in CLAIMS:
        c = compare_paired(rise[a], rise[b], lower_is_better=lower)
        lines.append(f"| {claim} | {c.difference:+.4g} [{c.low:+.4g}, {c.high:+.4g}] | {c.p_value:.2g} | "
                     f"**{c.verdict}** |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="finished run directories with checkpoints, one per seed")
    parser.add_argument("--overtrain", type=int, default=1000,
                        help="iterations of over-training the discriminator (default 1000, Figure 4's length)")
    parser.add_argument("--steps", type=int, default=200,
                        help="generator iterations of the counterattack (default 200)")
    parser.add_argument("--every", type=int, default=5, help="measure every N generator iterations (default 5)")
    parser.add_argument("--probe", type=int, default=500, help="real images and latent codes to score (default 500)")
    parser.add_argument("--cgd-lr", type=float, default=None,
                        help="CGD's step size for over-training (default: the run's discriminator learning rate)")
    parser.add_argument("--with-adam", type=float, default=None, metavar="LR",
                        help="over-train with Adam (learning rate LR) and, for the competitive one, ACGD (alpha LR, "
                             "beta 0.999) instead of the run's optimizer and CGD")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: the run directory; with several runs, OUT/<run name> each "
                             "and OUT/counterattack-summary.md)")
    args = parser.parse_args()
    for option in ("overtrain", "steps", "every", "probe"):
        if getattr(args, option) < 1:
            parser.error(f"--{option}: got {getattr(args, option)}; allowed: an integer >= 1")
    for option in ("cgd_lr", "with_adam"):
        value = getattr(args, option)
        if value is not None and not value > 0:
            parser.error(f"--{option.replace('_', '-')}: got {value}; allowed: a number > 0")
    if args.with_adam and args.cgd_lr:
        parser.error("--cgd-lr: CGD's step size; with --with-adam, ACGD takes alpha LR from --with-adam instead")
    if len(args.runs) > 1 and args.out is None:
        parser.error("--out: several runs need an output directory for their summary")
    records = analyse_runs(args, "counterattack.json", lambda run, out: analyse(run, out, args, parser))
    if len(records) > 1:
        summary = summarise(records, args.steps)
        write_atomically(args.out / "counterattack-summary.md", lambda f: f.write(summary.encode()))
        plot([r["curves"] for r in records], args.out / "counterattack.png")
        print(summary)


if __name__ == "__main__":
    main()
