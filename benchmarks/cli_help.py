"""How long ``equilibria --help`` (and a subcommand's) takes, against the Python start-up and against
importing torch (what every help paid before the command line imported torch lazily).

Each command is a fresh process; the commands take turns, round after round, so that the machine's
drift falls on all alike. Prints median seconds and the ratios to the baselines.

    .venv/bin/python benchmarks/cli_help.py --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (start-up)": [sys.executable, "-c", "pass"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "equilibria --help": [sys.executable, "-m", "equilibria", "--help"],
    "equilibria experiment --help": [sys.executable, "-m", "equilibria", "experiment", "--help"],
    "equilibria evaluate --help": [sys.executable, "-m", "equilibria", "evaluate", "--help"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="times each command runs (default 7)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    startup, torch_import = median["python -c pass (start-up)"], median["python -c 'import torch'"]
    print(f"median of {args.rounds} fresh processes each, interleaved")
    for name, seconds in median.items():
        print(f"  {name:32s} {seconds:6.3f} s   / start-up {seconds / startup:5.2f}   / import torch "
              f"{seconds / torch_import:5.2f}")


if __name__ == "__main__":
    main()
