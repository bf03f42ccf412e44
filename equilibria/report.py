"""Reports over runs: curves of a metric against steps and wall-clock time, and best-value tables.

Runs are grouped (one group per method/config, one run per seed); curves show the mean over a
group's seeds with a band of one standard deviation.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from equilibria.images import save_figure


def load_metrics(run_dir: str | Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} has no metrics.jsonl: is it a run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def series(run_dir: str | Path, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, seconds, values) of the records that have ``key``."""
    records = [r for r in load_metrics(run_dir) if isinstance(r.get(key), (int, float))]
    return (np.array([r["step"] for r in records], dtype=float), np.array([r["seconds"] for r in records], dtype=float),
            np.array([r[key] for r in records], dtype=float))


def best(run_dir: str | Path, key: str, lower_is_better: bool = True) -> float:
    values = series(run_dir, key)[2]
    return float(values.min() if lower_is_better else values.max())


def summary(groups: Mapping[str, Sequence[Path]], key: str, lower_is_better: bool = True) -> list[dict]:
    """Per group: the best value of each run, their mean and standard deviation, the mean final value
    and the mean wall-clock seconds of the runs. Runs that never logged ``key`` are left out, and a
    group with none (a metric only some methods log) has no row."""
    rows = []
    for label, runs in groups.items():
        runs = [run for run in runs if series(run, key)[2].size]
        if not runs:
            continue
        bests = [best(run, key, lower_is_better) for run in runs]
        finals = [float(series(run, key)[2][-1]) for run in runs]
        seconds = [load_metrics(run)[-1]["seconds"] for run in runs]
        rows.append({"group": label, "runs": len(runs), "best_mean": statistics.fmean(bests),
                     "best_std": statistics.stdev(bests) if len(bests) > 1 else 0.0, "bests": bests,
                     "final_mean": statistics.fmean(finals), "seconds_mean": statistics.fmean(seconds)})
    return rows


def markdown_table(rows: Sequence[dict], key: str) -> str:
    lines = [f"| group | runs | best {key} (mean ± std) | per seed | final {key} | seconds per run |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        per_seed = ", ".join(f"{b:.2f}" for b in r["bests"])
        lines.append(f"| {r['group']} | {r['runs']} | {r['best_mean']:.2f} ± {r['best_std']:.2f} | {per_seed} | "
                     f"{r['final_mean']:.2f} | {r['seconds_mean']:.0f} |")
    return "\n".join(lines)


def plot_curves(groups: Mapping[str, Sequence[Path]], key: str, path: str | Path, title: str | None = None) -> Path:
    """Two panels, ``key`` against iterations and against wall-clock minutes: mean over seeds ± std."""
    figure = Figure(figsize=(11, 4.2))
    axes = figure.subplots(1, 2)
    for label, runs in groups.items():
        data = [series(run, key) for run in runs]
        data = [d for d in data if d[0].size]
        if not data:
            continue
        steps = np.unique(np.concatenate([d[0] for d in data]))
        values = np.stack([np.interp(steps, d[0], d[2], right=np.nan) for d in data])
        minutes = np.stack([np.interp(steps, d[0], d[1] / 60, right=np.nan) for d in data])
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        for ax, x in ((axes[0], steps), (axes[1], np.nanmean(minutes, axis=0))):
            (line,) = ax.plot(x, mean, label=f"{label} (n={len(data)})")
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    for ax, xlabel in ((axes[0], "iteration"), (axes[1], "wall-clock minutes")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)
