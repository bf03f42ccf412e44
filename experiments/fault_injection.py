"""Fault injection: kill a training process with SIGKILL at random moments, several of them while a
checkpoint is being written, resume it each time, and compare its records with an uninterrupted run.

    .venv/bin/python experiments/fault_injection.py --kills 40 --seed 0 --out runs/fault-injection

Each round starts ``equilibria train`` (the first time) or ``equilibria resume`` in a subprocess,
waits until it trains, and kills it: at a random time, or, every other round, the moment a
temporary checkpoint file appears (a write in progress). After the kills the run is resumed to the end. The run's metrics (without
the wall-clock seconds), the final weights of every network and every sample grid must equal those
of the same config trained without interruption. Prints one JSON line with the figures
(docs/RELIABILITY.md); exits 1 if anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ["data.name=ring", "data.num_samples=2048", "generator.arch=mlp", "generator.width=32",
          "discriminator.width=32", "train.steps=40", "train.batch_size=64", "train.n_adv=2", "train.ema=0.9",
          "objective=wgan", "penalties.gradient_penalty=10", "log.every=2", "log.sample_every=4",
          "log.checkpoint_every=2", "log.keep_checkpoints=2", "log.progress=false", "log.tensorboard=false",
          "log.num_samples=4", "threads=1"]


def command(run_dir: Path, first: bool) -> list[str]:
    if first:
        return [sys.executable, "-m", "equilibria.cli.main", "train", "--run-dir", str(run_dir),
                *[a for o in CONFIG for a in ("--set", o)]]
    return [sys.executable, "-m", "equilibria.cli.main", "resume", str(run_dir)]


def writing(run_dir: Path) -> bool:
    directory = run_dir / "checkpoints"
    return directory.is_dir() and any(name.endswith(".tmp") for name in os.listdir(directory))


def started(process: subprocess.Popen, run_dir: Path, timeout: float = 60.0) -> None:
    """Wait until the process trains (its metrics file grows), so that kills land in training, not in
    Python's start-up."""
    metrics = run_dir / "metrics.jsonl"
    size = metrics.stat().st_size if metrics.exists() else -1
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if metrics.exists() and metrics.stat().st_size != size and metrics.stat().st_size > 0:
            return
        time.sleep(0.005)


def finished(run_dir: Path) -> bool:
    return (run_dir / "checkpoints" / "step-00000040.pt").exists()


def records(run_dir: Path) -> dict:
    """What must not depend on the kills: metrics without seconds, final weights, sample grids."""
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for record in metrics:
        record.pop("seconds")
    state = torch.load(run_dir / "checkpoints" / "step-00000040.pt", weights_only=True)["trainer"]
    weights = {f"{part}.{key}": value for part in ("generator", "discriminator", "ema")
               for key, value in state[part].items()}
    samples = {p.name: p.read_bytes() for p in sorted((run_dir / "samples").glob("*.png"))}
    return {"metrics": metrics, "weights": weights, "samples": samples}


def same(a: dict, b: dict) -> bool:
    return (a["metrics"] == b["metrics"] and a["samples"] == b["samples"] and a["weights"].keys() == b["weights"].keys()
            and all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"]))


def campaign(out: Path, kills: int, seed: int, max_wait: float = 0.4) -> dict:
    """Run the reference and the killed run under ``out``; return the figures."""
    rng = random.Random(seed)
    shutil.rmtree(out, ignore_errors=True)
    reference, victim = out / "reference", out / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    from equilibria.cli.main import main as equilibria  # the reference in this process: no start-up to wait for

    if equilibria(command(reference, True)[3:]) != 0:
        raise RuntimeError("the uninterrupted reference run failed")
    figures = {"kills": 0, "kills_while_writing": 0, "resumes": 0, "finished_before_kill": 0}
    first = True
    for round_ in range(kills):
        if finished(victim):
            break
        process = subprocess.Popen(command(victim, first), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        figures["resumes"] += not first
        started(process, victim)
        at_write = round_ % 2 == 1  # wait for a checkpoint write, however slow a loaded machine makes the run
        deadline = time.monotonic() + (30.0 if at_write else rng.uniform(0.0, max_wait))
        while process.poll() is None and time.monotonic() < deadline:
            if at_write and writing(victim):
                break
            time.sleep(0.0002 if at_write else 0.005)
        if process.poll() is None:
            figures["kills_while_writing"] += writing(victim)
            process.send_signal(signal.SIGKILL)
            figures["kills"] += 1
        else:
            figures["finished_before_kill"] += 1
        process.wait()
        first = not any((victim / "checkpoints").glob("step-*.pt"))
    while not finished(victim):
        figures["resumes"] += not first
        subprocess.run(command(victim, first), check=True, env=env, capture_output=True)
        first = False
    figures["identical"] = same(records(reference), records(victim))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=40, help="rounds that try to kill the run (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/fault-injection")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error(f"--kills: got {args.kills}; allowed: an integer >= 1")
    figures = campaign(Path(args.out), args.kills, args.seed)
    print(json.dumps(figures))
    return 0 if figures["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
