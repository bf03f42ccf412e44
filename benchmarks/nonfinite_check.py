"""What non-finite detection costs a training iteration (issue 11; docs/RELIABILITY.md).

    .venv/bin/python benchmarks/nonfinite_check.py --threads 1

Per iteration the trainer computes both players' gradient norms before their optimizer steps and
records the iteration's scalars on the device (``FiniteMonitor.record``); every ``log.every`` steps
it reads them (``check_finite``). This times, interleaved in one process on the digits demo's
networks: a whole ``train_step``, the same ``train_step`` with recording switched off, and the
detection's pieces on their own (two gradient norms, one record, one check per ``log.every``
iterations), and prints each as a share of the iteration. ``--skip`` measures
``train.nonfinite: skip``, which reads a flag before each optimizer step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from equilibria.core.trainer import grad_norm
from equilibria.training.build import build_trainer
from equilibria.training.config import load_config


def timed(call, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=40, help="rounds of 10 iterations of each variant")
    parser.add_argument("--skip", action="store_true", help="train.nonfinite=skip instead of stop")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = [f"threads={args.threads}", f"train.nonfinite={'skip' if args.skip else 'stop'}"]
    config = load_config(None, overrides)
    checked, unrecorded = build_trainer(config), build_trainer(config)
    unrecorded.monitor.record = lambda step, values: None
    for trainer in (checked, unrecorded):
        timed(trainer.train_step, 5)
    logs = checked.train_step()
    pieces = {
        "2 gradient norms": lambda: (grad_norm(checked._g_params), grad_norm(checked._d_params)),
        "record": lambda: checked.monitor.record(0, logs),
    }
    results: dict[str, list[float]] = {"train_step": [], "train_step, not recorded": [], **{k: [] for k in pieces},
                                       "check (per iteration)": []}
    for _ in range(args.rounds):
        results["train_step"] += timed(checked.train_step, 10)
        start = time.perf_counter()
        checked.check_finite()
        results["check (per iteration)"].append((time.perf_counter() - start) / config.log.every)
        results["train_step, not recorded"] += timed(unrecorded.train_step, 10)
        for name, call in pieces.items():
            results[name] += timed(call, 10)
        checked.monitor._pending.clear()
    iteration = statistics.median(results["train_step"])
    print(f"dcgan8 on digits, batch {config.train.batch_size}, threads {args.threads}, nonfinite="
          f"{config.train.nonfinite}, {10 * args.rounds} iterations each, interleaved (medians)")
    for name, values in results.items():
        value = statistics.median(values)
        print(f"{name:26s} {value * 1e3:8.3f} ms  {value / iteration:6.3f} of an iteration")
    detection = sum(statistics.median(results[k]) for k in (*pieces, "check (per iteration)"))
    print(f"detection in all: {detection * 1e3:.3f} ms, ratio (iteration) / (iteration - detection): "
          f"{iteration / (iteration - detection):.3f}")


if __name__ == "__main__":
    main()
