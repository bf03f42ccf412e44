"""Interleaved timing of several trainers in one process (benchmarks/precision.py, compile.py)."""

from __future__ import annotations

import statistics
import time


def interleaved_medians(trainers: dict, rounds: int, per_round: int = 5) -> dict[str, float]:
    """Median seconds of ``Trainer.train_step`` for each trainer: ``rounds`` rounds in which each takes
    ``per_round`` timed iterations in turn, so that the machine's drift falls on all alike."""
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            for _ in range(per_round):
                start = time.perf_counter()
                trainer.train_step()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
