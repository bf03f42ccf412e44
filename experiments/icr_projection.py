"""ICR Figure 7 and Figure 8's second claim: adversarial training as an approximate projection
(``equilibria.analysis.icr_projection``).

For every seed (one initialisation of both 28-weight networks, shared by every method and eta), plays
Eq. 4 with SimGD and with CGD, with eta the identity and eta = diag(1, 1e-2), and measures the share of
iterations whose first component is within ``--tol`` of P_data's (2). Writes ``OUT/projection.png``
(the generator's output against iterations for the first seed, as the paper's figure),
``OUT/projection.json`` and ``OUT/projection-summary.md``: each setting's mean share with its 95%
bootstrap interval, and paired comparisons (paired t-test, verdicts) for the two claims:

1. with eta = diag(1, 1e-2) the generator stays accurate in the first component longer than with eta
   the identity (Figure 7; per method);
2. CGD keeps it accurate there longer than SimGD (Figure 8; with eta = diag(1, 1e-2)).

The paper gives no step size or initialisation; the defaults (lr 0.03, weights N(0, 0.5^2), 6000
iterations) were chosen on seed 1, SimGD only, before the study (session 5). About 10 minutes per 10
seeds on one core (CGD's steps dominate); 20 seeds, the paper's number, by default:

    .venv/bin/python experiments/icr_projection.py --seeds 20 --out runs/icr-projection
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from matplotlib.figure import Figure

from equilibria.analysis.icr_projection import TARGET, run
from equilibria.images import save_figure
from equilibria.statistics import compare_paired, mean_interval

ETAS = {"identity": (1.0, 1.0), "diag(1, 1e-2)": (1.0, 1e-2)}
METHODS = ("simgd", "cgd")


def _interval(values) -> str:
    i = mean_interval(values)
    return f"{i.mean:.3f}" if i.n < 2 else f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="initialisations (default 20, the paper's)")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--lr", type=float, default=0.03, help="step size of both players")
    parser.add_argument("--init-std", type=float, default=0.5, help="standard deviation of the initial weights")
    parser.add_argument("--tol", type=float, default=0.1, help="'accurate': within this of P_data's component")
    parser.add_argument("--out", required=True, help="directory for the figure, the JSON and the summary")
    args = parser.parse_args(argv)
    for name, value in (("--seeds", args.seeds), ("--steps", args.steps)):
        if value < 1:
            parser.error(f"{name}: got {value}; allowed: an integer >= 1")
    for name, value in (("--lr", args.lr), ("--init-std", args.init_std), ("--tol", args.tol)):
        if not value > 0:
            parser.error(f"{name}: got {value}; allowed: a number > 0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shares: dict[str, list[float]] = {}
    first = {}
    for seed in range(args.seeds):
        for method in METHODS:
            for eta_name, eta in ETAS.items():
                result = run(method, eta, seed, args.steps, args.lr, args.init_std)
                shares.setdefault(f"{method}, eta {eta_name}", []).append(result.accurate_share(args.tol))
                if seed == 0:
                    first[(method, eta_name)] = result.outputs
        print(f"seed {seed} done", flush=True)

    figure = Figure(figsize=(11, 6))
    for row, method in enumerate(METHODS):
        for col, eta_name in enumerate(ETAS):
            ax = figure.add_subplot(2, 2, 2 * row + col + 1)
            outputs = first[(method, eta_name)].numpy()
            ax.plot(outputs[:, 0], label="first component")
            ax.plot(outputs[:, 1], label="second component")
            ax.axhline(TARGET[0], color="k", linestyle="--", linewidth=0.8, label="P_data's (2)")
            ax.set_ylim(0, 5)
            ax.set_title(f"{method}, eta {eta_name} (seed 0)", fontsize=9)
            ax.set_xlabel("iteration")
    figure.axes[0].legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, out / "projection.png")

    lines = [f"# ICR Figure 7: the share of iterations within {args.tol} of P_data's first component", "",
             f"{args.seeds} seeds, {args.steps} iterations, lr {args.lr}, initial weights N(0, {args.init_std}^2).",
             "", "| setting | mean share [95% CI] | runs with share > 0.5 |", "| --- | --- | --- |"]
    for name, values in shares.items():
        lines.append(f"| {name} | {_interval(values)} | {sum(v > 0.5 for v in values)} of {len(values)} |")
    lines += ["", "| claim | paired difference [95% CI] | paired t p | verdict |", "| --- | --- | --- | --- |"]
    claims = [(f"{m}: eta diag(1, 1e-2) keeps the first component longer than eta the identity",
               f"{m}, eta diag(1, 1e-2)", f"{m}, eta identity") for m in METHODS]
    claims.append(("eta diag(1, 1e-2): CGD keeps it longer than SimGD", "cgd, eta diag(1, 1e-2)",
                   "simgd, eta diag(1, 1e-2)"))
    for claim, a, b in claims:
        c = compare_paired(shares[a], shares[b], lower_is_better=False)
        p = "n/a" if c.p_value != c.p_value else f"{c.p_value:.2g}"
        lines.append(f"| {claim} | {c.difference:+.3f} [{c.low:+.3f}, {c.high:+.3f}] | {p} | **{c.verdict}** |")
    (out / "projection-summary.md").write_text("\n".join(lines) + "\n")
    (out / "projection.json").write_text(json.dumps({"settings": vars(args), "shares": shares}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
