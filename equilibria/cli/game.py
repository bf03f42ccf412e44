"""``equilibria game``: play a low-dimensional zero-sum game with SimGD, AltGD, CGD or ACGD.

    equilibria game quadratic --method simgd --lr 0.09 0.01 --steps 500 --out traj.png
    equilibria game bilinear --method simgd altgd cgd acgd --lr 0.1
    equilibria game my_games.py:saddle --x0 1 2 --y0 0.5 --method cgd --lr 0.05
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from equilibria import games

# equilibria.games.METHODS, written here so that the help needs no torch (tests/test_cli.py checks that they agree)
METHODS = ("simgd", "altgd", "cgd", "acgd")

EXAMPLES = """examples:
  equilibria game quadratic --method simgd --lr 0.09 0.01 --steps 500 --out traj.png   # ICR Figure 3
  equilibria game quadratic --method simgd --lr 0.03 0.03 --steps 500                  # ICR Figure 6, top
  equilibria game bilinear --method simgd altgd cgd acgd --lr 0.1
  equilibria game games.py:f --x0 1 2 --y0 0.5 --method cgd     # your f(x, y) of 1-D torch tensors
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``game`` on the ``equilibria`` command's subparsers."""
    p = subparsers.add_parser(
        "game", help="play a low-dimensional game min_x max_y f(x, y) with SimGD, AltGD, CGD or ACGD",
        description="Run gradient methods on a small zero-sum game (x minimises f, y maximises it), report "
                    "convergence or divergence and the spectral radius of the update's Jacobian at the "
                    "stationary point, and plot the trajectories.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("game", help="quadratic (x^2 + 10xy + y^2, ICR Eq. 3), bilinear (xy), module:function or "
                                "path/to/file.py:function (a function of two 1-D torch tensors returning a scalar)")
    p.add_argument("--method", nargs="+", default=["simgd"], metavar="METHOD",
                   help=f"one or more of {', '.join(METHODS)} (default simgd)")
    p.add_argument("--lr", nargs="+", type=float, default=[0.09, 0.01], metavar="LR",
                   help="step size of x and of y, or one for both (ACGD: alpha); default 0.09 0.01")
    p.add_argument("--steps", type=int, default=500, help="steps of each method (default 500)")
    p.add_argument("--x0", nargs="+", type=float, default=[1.0], help="start of x (its length sets x's size)")
    p.add_argument("--y0", nargs="+", type=float, default=[1.0], help="start of y (its length sets y's size)")
    p.add_argument("--beta", type=float, default=0.99, help="ACGD's beta2")
    p.add_argument("--eps", type=float, default=1e-5, help="ACGD's eps")
    p.add_argument("--out", help="write the trajectories to this PNG")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> None:
    from equilibria.games import load_game, play, plot

    game = load_game(args.game, (len(args.x0), len(args.y0)))
    methods = args.method
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--method: got {', '.join(unknown)}; allowed: {', '.join(METHODS)}")
    trajectories = [play(game, method, args.lr, args.steps, args.x0, args.y0, beta=args.beta, eps=args.eps)
                    for method in methods]
    print(f"f(x, y) = {game.formula}; x minimises, y maximises; start x0={args.x0}, y0={args.y0}; "
          f"{args.steps} steps")
    print(report(trajectories))
    if args.out:
        print(f"trajectories written to {plot(game, trajectories, args.out)}")


def report(trajectories: list[games.Trajectory]) -> str:
    """One line per run: method, step sizes, verdict, steps taken, final distance, spectral radius."""
    lines = [f"{'method':7s} {'lr_x':>8s} {'lr_y':>8s}  {'status':10s} {'steps':>6s} {'distance':>10s}  "
             "spectral radius at the stationary point"]
    for t in trajectories:
        if t.radius is None:
            radius = "n/a (no stationary point found)"
        else:
            if abs(t.radius - 1) <= 1e-9:
                verdict = "= 1: neutral"
            else:
                verdict = "< 1: attracting" if t.radius < 1 else "> 1: repelling"
            radius = f"{t.radius:.6f} ({verdict}{'; last step sizes held fixed' if t.method == 'acgd' else ''})"
        distance = "n/a" if math.isnan(t.distance) else f"{t.distance:.3e}"
        lines.append(f"{t.method:7s} {t.lr[0]:8g} {t.lr[1]:8g}  {t.status:10s} {len(t.points) - 1:6d} "
                     f"{distance:>10s}  {radius}")
    return "\n".join(lines)
