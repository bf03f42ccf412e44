"""Reports over runs: curves of a metric against steps and wall-clock time, and tables of best and
final values with 95% confidence intervals over seeds, and of each group against a baseline
(``equilibria.statistics``).

Runs are grouped (one group per method/config, one run per seed); curves show the mean over a
group's seeds with a band of one standard deviation (of the logs, on a log axis, for a metric compared
by ratio).
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from equilibria.images import save_figure
from equilibria.statistics import (Comparison, compare, compare_failures, compare_times, mean_interval,
                                   share_interval, verdict_at_plateau)


HIGHER_IS_BETTER = ("is", "inception_score", "precision", "recall", "modes", "high_quality")  # metric name endings
CLOCK_KEYS = ("step", "seconds", "eval_seconds")  # where a record is, and what it cost: not metrics


def load_metrics(run_dir: str | Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl``. A report reads each run once per metric and figure, so
    the parsed records are kept while the file is unchanged (same size and modification time): the
    dicts are shared between calls, and callers must not modify them."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} has no metrics.jsonl: is it a run directory?")
    stat = path.stat()
    return list(_parsed(str(path.resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=512)
def _parsed(path: str, mtime_ns: int, size: int) -> tuple[dict, ...]:
    """The records of the file at ``path`` as it was at (``mtime_ns``, ``size``), the cache's key."""
    return tuple(json.loads(line) for line in Path(path).read_text().splitlines() if line.strip())


def _has(record: dict, key: str) -> bool:
    return isinstance(record.get(key), (int, float))


def series(run_dir: str | Path, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, seconds, values) of the records that have ``key``."""
    records = [r for r in load_metrics(run_dir) if _has(r, key)]
    return (np.array([r["step"] for r in records], dtype=float), np.array([r["seconds"] for r in records], dtype=float),
            np.array([r[key] for r in records], dtype=float))


def summary(groups: Mapping[str, Sequence[Path]], key: str, lower_is_better: bool = True,
            log: bool = False, at: Sequence[int] = ()) -> list[dict]:
    """Per group: the best value of each run, their mean and standard deviation, the final value, the
    mean over the last quarter of the steps (a steadier plateau level than one final evaluation), the
    change over that quarter of the value (``drifts``) and of the best value so far (``best_drifts``),
    the value at each step of ``at`` (``at``: step -> one value per run, ``value_at``: how fast a
    group gets there), and the mean wall-clock seconds of the runs. Runs that never logged
    ``key`` are left out, and a group with none (a metric only some methods log) has no row.
    With ``log``, all of these are of the natural log of the values (which must be positive), for
    comparisons by ratio (``comparison_table``)."""
    rows = []
    for label, runs in groups.items():
        logged = [(run, records) for run, records in zip(runs, map(load_metrics, runs))
                  if any(_has(r, key) for r in records)]
        if not logged:
            continue
        names = [f"{label}/{Path(run).name}" for run, _ in logged]
        logged = [_log_records(records, key, name) if log else records for name, (_, records) in zip(names, logged)]
        values = [[r[key] for r in records if _has(r, key)] for records in logged]
        bests = [float(min(v) if lower_is_better else max(v)) for v in values]
        seconds = [records[-1]["seconds"] for records in logged]
        finals = [float(v[-1]) for v in values]
        rows.append({"group": label, "runs": len(logged), "best_mean": statistics.fmean(bests),
                     "best_std": statistics.stdev(bests) if len(bests) > 1 else 0.0, "bests": bests,
                     "final_mean": statistics.fmean(finals), "finals": finals,
                     "last_quarters": [_last_quarter_mean(records, key) for records in logged],
                     "drifts": [_last_quarter_change(records, key) for records in logged],
                     "best_drifts": [_last_quarter_change(records, key, lower_is_better) for records in logged],
                     "at": {step: [value_at(records, key, step, name) for name, records in zip(names, logged)]
                            for step in at},
                     "seconds_mean": statistics.fmean(seconds)})
    return rows


def value_at(records: Sequence[dict], key: str, step: int, run: str = "the run") -> float:
    """The last value of ``key`` logged at or before ``step`` (the final one for a run that ended earlier)."""
    logged = [r[key] for r in records if _has(r, key) and r["step"] <= step]
    if not logged:
        raise ValueError(f"at: got step {step}, before {run} first logged {key}; allowed: a step at or after "
                         "every run's first evaluation")
    return float(logged[-1])


def _log_records(records: Sequence[dict], key: str, run: str) -> list[dict]:
    """``records`` with each value of ``key`` replaced by its natural log."""
    values = [r[key] for r in records if _has(r, key)]
    if min(values) <= 0:
        raise ValueError(f"{key} of run {run}: got {min(values)!r}; a comparison by ratio needs values > 0 "
                         "(compare this metric by difference instead)")
    return [{**r, key: math.log(r[key])} if _has(r, key) else r for r in records]


def _last_quarter_change(records: Sequence[dict], key: str, best_if_lower_is_better: bool | None = None) -> float:
    """The final value of ``key`` minus its last value at or before 3/4 of the final step: near 0 when
    the run has reached its plateau. Given ``best_if_lower_is_better`` (True or False), the same change
    of the best value so far, which only improves: 0 unless the last quarter beat the earlier best."""
    logged = [r for r in records if _has(r, key)]
    values = np.array([r[key] for r in logged], dtype=float)
    if best_if_lower_is_better is not None:
        values = (np.minimum if best_if_lower_is_better else np.maximum).accumulate(values)
    final_step = logged[-1]["step"]
    earlier = [i for i, r in enumerate(logged) if r["step"] <= 0.75 * final_step] or [0]
    return float(values[-1] - values[earlier[-1]])


def _last_quarter_mean(records: Sequence[dict], key: str) -> float:
    """The mean of the values of ``key`` logged after 3/4 of the final step (the final one included)."""
    logged = [r for r in records if _has(r, key)]
    last = logged[-1]["step"]
    return statistics.fmean(float(r[key]) for r in logged if r["step"] > 0.75 * last or r is logged[-1])


def _interval(values: Sequence[float], sign: bool = False) -> str:
    i, f = mean_interval(values), "+.3g" if sign else ".3g"
    return f"{i.mean:{f}}" if i.n < 2 else f"{i.mean:{f}} [{i.low:{f}}, {i.high:{f}}]"


def markdown_table(rows: Sequence[dict], key: str) -> str:
    """Per group: best and final value and the mean over the last quarter of the steps, each a mean over
    seeds with its 95% bootstrap interval, the change over that quarter (the plateau check: its
    interval should hold 0), and the value at each step of the rows' ``at``."""
    steps = list(rows[0]["at"]) if rows else []
    lines = [f"| group | seeds | best {key} [95% CI] | per seed | final {key} [95% CI] | last quarter's mean [95% CI] "
             "| seconds per run | change over the last quarter [95% CI] |"
             + "".join(f" at step {step} [95% CI] |" for step in steps),
             "| --- " * (8 + len(steps)) + "|"]
    for r in rows:
        per_seed = ", ".join(f"{b:.3g}" for b in r["bests"])
        lines.append(f"| {r['group']} | {r['runs']} | {_interval(r['bests'])} | {per_seed} | "
                     f"{_interval(r['finals'])} | {_interval(r['last_quarters'])} | {r['seconds_mean']:.0f} | "
                     f"{_interval(r['drifts'], sign=True)} |" + "".join(f" {_interval(r['at'][step])} |" for step in steps))
    return "\n".join(lines)


def comparison_text(c: Comparison, ratio: bool, digits: int = 3) -> str:
    """"+d [+low, +high]": the difference of the means with its 95% interval (none against a group of one seed);
    with ``ratio`` (a ``Comparison`` of log values), "x r [low, high]": the ratio of the geometric means,
    exp(difference), and its interval; an infinite ratio of times (``compare_times``) says whose median
    was never reached."""
    if ratio:
        f, show = f".{digits}g", math.exp
        text = f"x{show(c.difference):{f}}"
        if math.isinf(c.difference):
            text += " (the baseline's median never reached)" if c.difference < 0 else " (its median never reached)"
    else:
        f, show = f"+.{digits}g", float
        text = f"{c.difference:{f}}"
    return text if math.isnan(c.low) else f"{text} [{show(c.low):{f}}, {show(c.high):{f}}]"


def comparison_table(rows: Sequence[dict], baselines: Mapping[str, Sequence[str]], key: str,
                     lower_is_better: bool, ratio: bool = False) -> str:
    """Each group against each of its baselines (``baselines``: group -> baseline groups): the difference of the
    means of the best values, of the final values and of the last quarter's means, with 95% bootstrap
    intervals, Welch's t-test p-value, and the verdict on "better", at the plateau (``plateau_verdict``);
    then the same of the values at each step of the rows' ``at`` (how fast: a plain ``verdict``, no
    plateau to wait for). With ``ratio`` (``rows`` from ``summary(..., log=True)``), the ratio of the
    geometric means instead, exp of the difference of the mean logs, and Welch's t-test on the logs."""
    by_group = {r["group"]: r for r in rows}
    measure = "ratio" if ratio else "difference"
    names = list(measures(rows[0])) if rows else []
    lines = [f"| group {'/' if ratio else '-'} baseline |"
             + "".join(f" {name}: {measure} [95% CI] | Welch p | verdict |" for name in names),
             "| --- " * (1 + 3 * len(names)) + "|"]
    for group, baseline in pairs(baselines):
        if group not in by_group or baseline not in by_group:
            continue  # a metric that one of them never logged
        cells = []
        for name in names:
            c, verdict, note = compare_rows(by_group[group], by_group[baseline], name, lower_is_better)
            p_value = "n/a" if math.isnan(c.p_value) else f"{c.p_value:.2g}"  # one seed, or no spread in either
            cells += [comparison_text(c, ratio), p_value,
                      f"**{verdict}**" + (f" ({note})" if note else "")]
        lines.append(f"| {group} {'/' if ratio else '-'} {baseline} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measures(row: dict) -> dict[str, tuple[list[float], str | None]]:
    """What a ``summary`` row is compared on, by name: its best, final and last quarter's values and its
    value at each step of ``at``, one per run, each with the changes its verdict waits on to settle
    (``plateau_verdict``; None: a value at a fixed step has no plateau to wait for)."""
    return {"best": (row["bests"], "best_drifts"), "final": (row["finals"], "drifts"),
            "last quarter": (row["last_quarters"], "drifts"),
            **{f"at step {step}": (values, None) for step, values in row["at"].items()}}


def compare_rows(row: dict, baseline_row: dict, name: str, lower_is_better: bool) -> tuple[Comparison, str, str]:
    """A group's ``summary`` row against its baseline's on one of its ``measures``: the comparison, and
    the verdict and note (``plateau_verdict``, where the measure waits for a plateau)."""
    (a, changes), (b, _) = measures(row)[name], measures(baseline_row)[name]
    c = compare(a, b, lower_is_better)
    verdict, note = plateau_verdict(c, row, baseline_row, lower_is_better, changes) if changes else (c.verdict, "")
    return c, verdict, note


def pairs(baselines: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(group, baseline) for each group and each of its baselines, in order."""
    return [(group, baseline) for group, names in baselines.items() for baseline in names]


def plateau_verdict(comparison: Comparison, row: dict, baseline_row: dict, lower_is_better: bool,
                    changes: str = "drifts") -> tuple[str, str]:
    """(verdict, note) for a group's ``summary`` row against its baseline's: the comparison's verdict,
    or "undecided" when the group behind could close the gap by training as long again at its
    last quarter's rate of ``changes`` (``drifts``: of the value, for final values and means;
    ``best_drifts``: of the best value so far, for best values) (``equilibria.statistics.verdict_at_plateau``);
    the note then says what this budget showed and which group could close the gap, else it is empty."""
    verdict, behind = verdict_at_plateau(comparison, row[changes], baseline_row[changes], lower_is_better)
    if behind is None:
        return verdict, ""
    name = (row if behind == "a" else baseline_row)["group"]
    return verdict, f"{comparison.verdict} at this budget; {name} still improving fast enough to close the gap"


def plot_curves(groups: Mapping[str, Sequence[Path]], key: str, path: str | Path, title: str | None = None,
                log: bool = False) -> Path:
    """``curves_figure`` written to ``path`` (PNG)."""
    return save_figure(curves_figure(groups, key, title, log), path)


def curves_figure(groups: Mapping[str, Sequence[Path]], key: str, title: str | None = None,
                  log: bool = False) -> Figure:
    """Two panels, ``key`` against iterations and against wall-clock minutes: mean over seeds ± std.
    With ``log`` (a metric compared by ratio), a log axis and the statistics of the logs: the
    geometric mean, the band from dividing it by the geometric standard deviation to multiplying by it."""
    figure = Figure(figsize=(11, 4.2))
    axes = figure.subplots(1, 2)
    for label, runs in groups.items():
        data = [series(run, key) for run in runs]
        data = [d for d in data if d[0].size]
        if not data:
            continue
        steps = np.unique(np.concatenate([d[0] for d in data]))
        values = np.stack([np.interp(steps, d[0], d[2], right=np.nan) for d in data])
        if log and np.nanmin(values) <= 0:
            raise ValueError(f"{key} of group {label}: got {float(np.nanmin(values))!r}; a log axis needs values > 0 "
                             "(compare this metric by difference instead)")
        values = np.log(values) if log else values
        minutes = np.stack([np.interp(steps, d[0], d[1] / 60, right=np.nan) for d in data])
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        low, middle, high = (np.exp(v) if log else v for v in (mean - std, mean, mean + std))
        for ax, x in ((axes[0], steps), (axes[1], np.nanmean(minutes, axis=0))):
            (line,) = ax.plot(x, middle, label=f"{label} (n={len(data)})")
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    for ax, xlabel in ((axes[0], "iteration"), (axes[1], "wall-clock minutes")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{key} (geometric mean)" if log else key)
        ax.grid(alpha=0.3, which="both" if log else "major")
        if log:
            ax.set_yscale("log")
    if axes[0].lines:  # none before a run has finished
        axes[0].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def time_to_reach(records: Sequence[dict], key: str, level: float, lower_is_better: bool) -> tuple[float, float]:
    """(step, seconds of training) of the first record whose ``key`` is at ``level`` or better; (inf, inf)
    for a run that never got there."""
    for r in records:
        if _has(r, key) and (r[key] <= level if lower_is_better else r[key] >= level):
            return float(r["step"]), float(r["seconds"])
    return math.inf, math.inf


def reach_times(groups: Mapping[str, Sequence[Path]], key: str, level: float,
                lower_is_better: bool) -> dict[str, dict[str, list[float]]]:
    """Per group with runs that logged ``key``: {"steps": [...], "seconds": [...]}, one ``time_to_reach`` per run."""
    times = {}
    for group, runs in groups.items():
        reached = [time_to_reach(records, key, level, lower_is_better) for records in map(load_metrics, runs)
                   if any(_has(r, key) for r in records)]
        if reached:
            times[group] = {"steps": [t[0] for t in reached], "seconds": [t[1] for t in reached]}
    return times


def reach_table(groups: Mapping[str, Sequence[Path]], key: str, level: float, lower_is_better: bool,
                baselines: Mapping[str, Sequence[str]] | None = None) -> str:
    """Per group: the runs that reached ``level`` of ``key``, and the median steps and seconds of training
    they took; against each baseline, the ratio of the median times with its interval, the Mann-Whitney
    test and the verdict on "faster" (``equilibria.statistics.compare_times``; a run that never got there
    counts as slower than every run that did)."""
    times = reach_times(groups, key, level, lower_is_better)
    lines = [f"| group | reached {key} {'<=' if lower_is_better else '>='} {level:g} | median steps | "
             "median seconds of training |", "| --- | --- | --- | --- |"]
    for group, t in times.items():
        lines.append(f"| {group} | {sum(map(math.isfinite, t['steps']))} of {len(t['steps'])} | "
                     f"{statistics.median(t['steps']):.6g} | {statistics.median(t['seconds']):.4g} |")
    cells: dict[tuple[str, str], list[str]] = {}
    for group, baseline, _, c in reach_comparisons(times, baselines):
        cells.setdefault((group, baseline), []).extend(
            [comparison_text(c, ratio=True), "n/a" if math.isnan(c.p_value) else f"{c.p_value:.2g}", f"**{c.verdict}**"])
    if cells:
        lines += ["", "| group / baseline | steps: ratio of the medians [95% CI] | Mann-Whitney p | verdict | "
                  "seconds: ratio of the medians [95% CI] | Mann-Whitney p | verdict |", "| --- " * 7 + "|"]
        lines += [f"| {group} / {baseline} | " + " | ".join(row) + " |" for (group, baseline), row in cells.items()]
    return "\n".join(lines)


def reach_comparisons(times: Mapping[str, Mapping[str, list[float]]], baselines: Mapping[str, Sequence[str]] | None
                      ) -> list[tuple[str, str, str, Comparison]]:
    """(group, baseline, "steps" or "seconds", ``compare_times``) for each group with ``reach_times`` against
    each of its baselines with them."""
    return [(group, baseline, unit, compare_times(times[group][unit], times[baseline][unit]))
            for group, baseline in pairs(baselines or {}) if group in times and baseline in times
            for unit in ("steps", "seconds")]


def failure_table(rows: Sequence[dict], key: str, threshold: float, lower_is_better: bool,
                  baselines: Mapping[str, Sequence[str]] | None = None) -> str:
    """Per group: the runs whose final ``key`` is worse than ``threshold``, their share with its exact
    95% interval, and against each of its baselines (``baselines``: group -> baseline groups; a row
    each) Fisher's exact test and the verdict on "fails less often"."""
    def failed(row: dict) -> int:
        return sum((v > threshold) if lower_is_better else (v < threshold) for v in row["finals"])

    baselines = baselines or {}
    shares = {r["group"]: share_interval(failed(r), r["runs"]) for r in rows}
    lines = [f"| group | failed (final {key} {'>' if lower_is_better else '<'} {threshold:g}) | share [95% CI] | "
             "baseline | Fisher p | verdict |", "| --- | --- | --- | --- | --- | --- |"]
    for group, share in shares.items():
        line = (f"| {group} | {share.failed} of {share.n} | {share.failed / share.n:.2f} "
                f"[{share.low:.2f}, {share.high:.2f}] |")
        compared = [b for b in baselines.get(group, []) if b in shares]
        for baseline in compared:
            p_value, verdict = compare_failures(share, shares[baseline])
            lines.append(line + f" {baseline} | {p_value:.2g} | **{verdict}** |")
        if not compared:
            lines.append(line + " | | |")
    return "\n".join(lines)
