"""Data parallelism on CPU: 2 processes x 1 thread against 1 process x 1 thread, the same global batch.

    .venv/bin/python benchmarks/data_parallel.py [--set key=value ...] [--iterations 200]

Times ``Trainer.train_step`` (medians after a warm-up) of one process training the global batch,
then starts itself under ``torchrun --standalone --nproc_per_node=2`` where each process trains
half of it and averages gradients with gloo, timing the same iterations and the time spent in the
gradient all-reduce (the communication share). Prints the throughput ratio (one process's
iteration time over two processes'); the default is the digits demo at batch 128.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def measure(overrides: list[str], iterations: int) -> dict[str, float]:
    """Median seconds per iteration and per iteration in all-reduce, in this process's group."""
    from equilibria.core.parallel import from_environment
    from equilibria.training.build import build_trainer, device_of
    from equilibria.training.config import load_config

    torch.set_num_threads(1)
    config = load_config(None, overrides)
    parallel = from_environment(device_of(config))
    trainer = build_trainer(config, parallel=parallel)
    spent = [0.0]
    average = parallel.average

    def timed_average(tensors):
        start = time.perf_counter()
        average(tensors)
        spent[0] += time.perf_counter() - start

    object.__setattr__(parallel, "average", timed_average)
    for _ in range(10):
        trainer.train_step()
    steps, communication = [], []
    for _ in range(iterations):
        spent[0] = 0.0
        start = time.perf_counter()
        trainer.train_step()
        steps.append(time.perf_counter() - start)
        communication.append(spent[0])
    return {"iteration": statistics.median(steps), "communication": statistics.median(communication),
            "rank": parallel.rank, "world": parallel.world}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = ["train.batch_size=128", "threads=1", *args.set]
    if args.worker:
        result = measure(overrides, args.iterations)
        if result["rank"] == 0:
            print("RESULT " + json.dumps(result), flush=True)
        return
    single = measure(overrides, args.iterations)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", __file__, "--worker",
                           "--iterations", str(args.iterations), *[a for o in args.set for a in ("--set", o)]],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"the 2-process run failed:\n{done.stderr[-3000:]}")
    double = json.loads(lines[0].removeprefix("RESULT "))
    print(f"config overrides: {overrides}; {args.iterations} iterations each (medians)")
    print(f"1 process x 1 thread:   {single['iteration'] * 1e3:8.2f} ms/iteration")
    print(f"2 processes x 1 thread: {double['iteration'] * 1e3:8.2f} ms/iteration, of it all-reduce "
          f"{double['communication'] * 1e3:.2f} ms ({double['communication'] / double['iteration']:.1%})")
    print(f"throughput ratio (2 processes / 1): {single['iteration'] / double['iteration']:.2f}")


if __name__ == "__main__":
    main()
