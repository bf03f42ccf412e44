"""Experiments: several configs (groups) x several seeds, run, resumed if interrupted, and reported.

An experiment file (YAML, safe loader)::

    seeds: [0, 1, 2]
    set: [data.root=../shared/data/mnist, data.split=test]     # overrides for every run
    metrics: [eval/fid]                                        # curves and tables in the report
    groups:
      advas: {config: configs/advas-mnist-wgangp-advas.yaml}
      baseline-nadv5: {config: configs/advas-mnist-wgangp-nadv5.yaml, set: [train.n_adv=5],
                       seeds: [0, 1, 2, 3, 4]}         # a group's own seeds, after the file's
    baseline: baseline-nadv5          # each group against it, or {group: its baseline, or a list of them}
    failure: {metric: eval/fid, threshold: 300}                # optional: the share of runs worse than that
    ratio: [eval/fid]          # optional: compared by the ratio of geometric means (Welch on the logs)
    at: [5000]                 # optional: the eval/ metrics also at these steps (how fast groups get there)
    reach: {eval/fid: 30}      # optional: the steps and seconds each run took to reach that level
    scales:                                                    # --scale NAME (--quick: quick)
      quick: {set: [train.steps=20], seeds: [0, 1]}
      paper: {set: [train.steps=40000, generator.width=64]}

Each run goes to ``OUT/<group>/s<seed>`` and is trained in a subprocess (``jobs`` at a time, each
with ``threads`` torch threads), or as a submitit job on SLURM (``equilibria.launch``), on one
process or several under torchrun; a finished run is skipped and an interrupted one resumed, so the
same command continues an experiment, seed by seed (every group of a seed before the next). A
finished run's record without its checkpoints (``archive``) counts as done. The report, over the
finished runs, is ``OUT/report.md`` with one PNG of curves per metric (against iterations and wall-
clock time), a table of best and final values with 95% intervals over seeds and the change over the
last quarter of training (the plateau check) and, with a ``baseline``, each group's difference from
it with its interval, Welch's t-test and a verdict that waits for the group behind to reach its
plateau (``equilibria.statistics``); for the metrics in ``ratio``, the ratio of the geometric means
over seeds instead, with the interval and the test on the logs (a claim stated as "FID 42 -> 22",
robust to one failed seed whose FID is ten times the others); with ``failure``,
each group's share of failed runs with its exact interval and Fisher's exact test against its
baseline; with ``reach``, the steps and seconds of training each run took to reach a level, each
group's median against its baseline's (ratio, bootstrap interval, Mann-Whitney test). Every group
starts from the same initial weights for a given seed (the networks are built from the seed before
any method's).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from equilibria import report
from equilibria.launch import LAUNCHERS, RunTask, run_locally, run_with_submitit
from equilibria.training import checkpoint
from equilibria.training.config import Config, ConfigError, dotted, load_config, to_dict
from equilibria.training.run import load_run_config


@dataclass
class Group:
    config: Path
    overrides: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])


@dataclass
class Experiment:
    groups: dict[str, Group]
    seeds: list[int]
    overrides: list[str]
    metrics: list[str]
    baselines: dict[str, list[str]] = field(default_factory=dict)  # group -> the groups it is compared with
    scales: dict[str, list[str]] = field(default_factory=dict)
    failure: tuple[str, float] | None = None  # (metric, threshold): a run whose final value is worse fails
    ratio: list[str] = field(default_factory=list)  # metrics compared by the ratio of geometric means
    at: list[int] = field(default_factory=list)  # steps at which the eval/ metrics are also compared
    reach: dict[str, float] = field(default_factory=dict)  # eval/ metric -> the level whose time to reach is compared


def _strings(value, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"experiment key {key!r}: got {value!r}; allowed: a list of key=value strings")
    return value


KEYS = ("seeds", "set", "metrics", "groups", "baseline", "scales", "failure", "ratio", "at", "reach")


def load_experiment(path: str | Path, scale: str | None = None) -> Experiment:
    """Read and check an experiment file; every group's config is validated with its overrides.
    A group may give its own ``seeds`` (more seeds where a claim needs them); the others have the file's.
    ``scale`` names one of the file's ``scales`` (quick, paper), whose overrides come after ``set``
    and after each group's own (and its ``seeds``, if it gives them, replace the file's and the groups')."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"experiment file {str(path)!r}: got {type(data).__name__}; allowed: a mapping of "
                          f"{', '.join(KEYS)}")
    unknown = set(data) - set(KEYS)
    if unknown:
        raise ConfigError(f"unknown experiment key {sorted(unknown)[0]!r}; allowed: {', '.join(KEYS)}")
    scales_data = data.get("scales") or {}
    if not isinstance(scales_data, dict) or not all(isinstance(v, dict) and set(v) <= {"set", "seeds"}
                                                    for v in scales_data.values()):
        raise ConfigError(f"experiment key 'scales': got {scales_data!r}; allowed: a mapping name -> "
                          "{set: [key=value, ...], seeds: [...]}")
    scales = {str(name): _strings(spec.get("set"), f"scales.{name}.set") for name, spec in scales_data.items()}
    scale_overrides: list[str] = []
    if scale is not None:
        if scale not in scales:
            raise ConfigError(f"scale: got {scale!r} for {str(path)!r}; allowed: {', '.join(scales) or 'none'}")
        data = {**data, "seeds": scales_data[scale].get("seeds", data.get("seeds", [0]))}
        scale_overrides = scales[scale]  # after every group's own: a scale sets the steps of all
    seeds = _seeds(data.get("seeds", [0]), "seeds")
    groups_data = data.get("groups")
    if not isinstance(groups_data, dict) or not groups_data:
        raise ConfigError(f"experiment key 'groups': got {groups_data!r}; allowed: a mapping name -> "
                          "{config: FILE, set: [key=value, ...]}")
    overrides = _strings(data.get("set"), "set")
    metrics = data.get("metrics", ["eval/fid"])
    groups = {}
    for name, spec in groups_data.items():
        if not isinstance(spec, dict) or "config" not in spec or set(spec) - {"config", "set", "seeds"}:
            raise ConfigError(f"experiment group {name!r}: got {spec!r}; allowed: {{config: FILE, set: [...], "
                              "seeds: [...]}")
        config = Path(spec["config"])
        if not config.is_absolute() and not config.exists():
            config = path.parent / config
        own_seeds = seeds if "seeds" not in spec or (scale and "seeds" in scales_data[scale]) else \
            _seeds(spec["seeds"], f"groups.{name}.seeds")
        group = Group(config, [*_strings(spec.get("set"), f"groups.{name}.set"), *scale_overrides], own_seeds)
        load_config(group.config, [*overrides, *group.overrides])  # fail now, not after hours of training
        groups[str(name)] = group
    baselines = _baselines(data.get("baseline"), groups)
    failure = data.get("failure")
    if failure is not None:
        if (not isinstance(failure, dict) or set(failure) != {"metric", "threshold"}
                or not isinstance(failure["metric"], str) or isinstance(failure["threshold"], bool)
                or not isinstance(failure["threshold"], (int, float))):
            raise ConfigError(f"experiment key 'failure': got {failure!r}; allowed: {{metric: NAME, threshold: "
                              "NUMBER}} (a run fails when its final value is worse than the threshold)")
        failure = (failure["metric"], float(failure["threshold"]))
    metrics = _strings(metrics, "metrics")
    return Experiment(groups, seeds, overrides, metrics, baselines, scales, failure, _ratio(data.get("ratio"), metrics),
                      _at(data.get("at")), _reach(data.get("reach"), metrics))


def _at(value) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                                              for s in value) or len(set(value)) < len(value):
        raise ConfigError(f"experiment key 'at': got {value!r}; allowed: a list of distinct steps >= 1, at which "
                          "the eval/ metrics are also compared (each run's last value logged at or before the step)")
    return sorted(value)


def _reach(value, metrics: list[str]) -> dict[str, float]:
    if value is None:
        return {}
    evaluated = [m for m in metrics if m.startswith("eval/")]
    if not isinstance(value, dict) or not all(k in evaluated and isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for k, v in value.items()):
        raise ConfigError(f"experiment key 'reach': got {value!r}; allowed: a mapping from metrics of 'metrics' that "
                          f"are evaluated ({', '.join(evaluated) or 'none'}) to the level whose time to reach is "
                          "compared, e.g. {eval/fid: 30}")
    return {k: float(v) for k, v in value.items()}


def _ratio(value, metrics: list[str]) -> list[str]:
    evaluated = [m for m in metrics if m.startswith("eval/")]
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(m, str) and m in evaluated for m in value):
        raise ConfigError(f"experiment key 'ratio': got {value!r}; allowed: a list of the file's eval/ metrics "
                          f"({', '.join(evaluated) or 'none'}), compared by the ratio of geometric means")
    return value


def _seeds(value, key: str) -> list[int]:
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool)
                                                          and s >= 0 for s in value) or len(set(value)) < len(value):
        raise ConfigError(f"experiment key {key!r}: got {value!r}; allowed: a non-empty list of distinct integers >= 0")
    return value


def _baselines(value, groups: Collection[str]) -> dict[str, list[str]]:
    """The ``baseline`` key as group -> the groups it is compared with: one group name (every other
    group against it), or a mapping group -> a group or a list of groups."""
    if value is None:
        return {}
    if isinstance(value, str) and value in groups:
        return {group: [value] for group in groups if group != value}
    if isinstance(value, dict):
        pairs = {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        if all(k in groups and isinstance(v, list) and v and all(isinstance(b, str) and b in groups and b != k
                                                                 for b in v) for k, v in pairs.items()):
            return pairs
    raise ConfigError(f"experiment key 'baseline': got {value!r}; allowed: one of the groups ({', '.join(groups)}), "
                      "or a mapping group -> another group or a list of other groups")


def _tasks(experiment: Experiment, out: Path, extra: list[str] | None, threads: int = 1,
           processes: int = 1) -> list[tuple[str, Config, RunTask]]:
    """(group name, its config, the RunTask) of every run, seed by seed (every group of a seed before the next
    seed: an experiment stopped early has whole seeds to compare): the file's seeds, then those that only
    some groups give, in increasing order. Refuses (``ConfigError``) runs already in ``out`` that were
    trained with another config (``config_changes``): they would be counted, or resumed, as the file's."""
    tasks, changed = [], []
    extra_seeds = {seed for group in experiment.groups.values() for seed in group.seeds} - {*experiment.seeds}
    for seed in [*experiment.seeds, *sorted(extra_seeds)]:
        for name, group in experiment.groups.items():
            if seed not in group.seeds:
                continue
            overrides = [*experiment.overrides, *group.overrides, *(extra or []), f"seed={seed}",
                         f"threads={threads}", "log.progress=false"]
            config = load_config(group.config, overrides)
            run_dir = out / name / f"s{seed}"
            if changes := config_changes(run_dir, config):
                changed.append(f"{name}/s{seed} ({'; '.join(changes)})")
            tasks.append((name, config, RunTask(f"{name}/s{seed}", run_dir, group.config, overrides,
                                                config.train.steps, processes)))
    if changed:
        raise ConfigError(f"{len(changed)} run{'s' if len(changed) > 1 else ''} in {str(out)!r} trained with "
                          f"another config than the experiment's now: {', '.join(changed[:5])}"
                          f"{f' and {len(changed) - 5} more' if len(changed) > 5 else ''}; allowed: runs of the "
                          "experiment's config (a larger train.steps trains them further): move those run "
                          "directories away to train them again, or give back the old values")
    return tasks


# config keys a run may differ in: where it ran, and what it writes beside its records (metrics.jsonl)
WHERE_NOT_WHAT = ("threads", "device", "run_dir", "data.root", "log.progress", "log.tensorboard",
                  "log.checkpoint_every", "log.keep_checkpoints", "log.sample_every", "log.num_samples")


def config_changes(run_dir: Path, config: Config) -> list[str]:
    """How the config ``run_dir`` was trained with (its ``config.yaml``, if any) differs from ``config``:
    "key: ran A, now B" for each key but where it ran and what it writes beside its records
    (``WHERE_NOT_WHAT``), and a larger ``train.steps`` (resuming to it trains the run further)."""
    if not (run_dir / "config.yaml").is_file():
        return []
    ran, now = dotted(to_dict(load_run_config(run_dir))), dotted(to_dict(config))
    changes = []
    for key in sorted(ran.keys() | now.keys()):
        before, after = ran.get(key), now.get(key)
        ignored = key in WHERE_NOT_WHAT or (key == "train.steps" and before <= after)
        if before != after and not ignored:
            changes.append(f"{key}: ran {before!r}, now {after!r}")
    return changes


def run_dirs(experiment: Experiment, out: Path, extra: list[str] | None = None) -> dict[str, list[Path]]:
    """Every run's directory by group (``OUT/<group>/s<seed>``), with the runs already there checked
    against the experiment's config (``_tasks``)."""
    runs: dict[str, list[Path]] = {name: [] for name in experiment.groups}
    for name, _, task in _tasks(experiment, out, extra):
        runs[name].append(task.run_dir)
    return runs


def run_experiment(experiment: Experiment, out: Path, *, jobs: int = 1, threads: int = 1,
                   extra: list[str] | None = None, processes: int = 1, launcher: str = "local",
                   cluster: dict[str, Any] | None = None) -> dict[str, list[Path]]:
    """Train every (group, seed) that is not finished, every group of a seed before the next seed;
    return the run directories by group.

    ``launcher``: "local" (subprocesses here, ``jobs`` at a time), "slurm" or "submitit-local"
    (submitit jobs, all submitted at once; ``cluster`` adds submitit parameters such as
    ``timeout_min`` or ``slurm_partition``). ``processes`` > 1 trains each run under torchrun."""
    (runs,) = run_experiments([(experiment, out)], jobs=jobs, threads=threads, extra=extra, processes=processes,
                              launcher=launcher, cluster=cluster)
    return runs


def run_experiments(studies: list[tuple[Experiment, Path]], *, jobs: int = 1, threads: int = 1,
                    extra: list[str] | None = None, processes: int = 1, launcher: str = "local",
                    cluster: dict[str, Any] | None = None,
                    on_finished: Callable[[int, dict[str, list[Path]]], None] | None = None,
                    only: Collection[str] | None = None) -> list[dict[str, list[Path]]]:
    """``run_experiment`` for several experiments (each with its directory) as one queue: their
    unfinished runs in the order given, ``jobs`` at a time, so that the next experiment's first runs
    start while the last runs of one are still training. Returns the run directories by group of each.
    ``on_finished(i, runs)`` is called once the i-th experiment has no run left to train (with the
    local launcher, as soon as its last run ends, while later ones train; e.g. to write its report).
    ``only`` names the groups to train (the others' runs are left as they are but still returned)."""
    if only is not None:
        known = {name for experiment, _ in studies for name in experiment.groups}
        unknown = sorted(set(only) - known)
        if unknown or not only:
            raise ConfigError(f"groups: got {','.join(unknown) or repr('')}; allowed: a comma-separated list of "
                              f"{', '.join(sorted(known))}")
    if launcher not in LAUNCHERS:
        raise ConfigError(f"launcher: got {launcher!r}; allowed: {', '.join(LAUNCHERS)}")
    if processes < 1:
        raise ConfigError(f"processes: got {processes}; allowed: an integer >= 1 (processes per run)")
    tasks, study_of, left, gpus, all_runs = [], {}, [0] * len(studies), 0, []
    for i, (experiment, out) in enumerate(studies):  # every experiment checked before any run starts
        runs: dict[str, list[Path]] = {name: [] for name in experiment.groups}
        for name, config, task in _tasks(experiment, out, extra, threads, processes):
            if len(studies) > 1:  # the log lines name the experiment too
                task.label = f"{out.name}/{task.label}"
            runs[name].append(task.run_dir)
            if config.train.batch_size % processes:
                raise ConfigError(f"processes: got {processes} for {name} (train.batch_size="
                                  f"{config.train.batch_size}); allowed: a divisor of the batch size")
            gpus = processes if config.device.startswith("cuda") else gpus
            if task.state() == "done":
                print(f"{task.label}: done", flush=True)
            elif only is None or name in only:
                tasks.append(task)
                study_of[task.run_dir] = i
                left[i] += 1
        all_runs.append(runs)
    finish = on_finished or (lambda i, runs: None)

    def done(task: RunTask) -> None:
        i = study_of[task.run_dir]
        left[i] -= 1
        if left[i] == 0:
            finish(i, all_runs[i])

    for i in [i for i, count in enumerate(left) if count == 0]:
        finish(i, all_runs[i])
    if launcher == "local":
        run_locally(tasks, jobs, on_done=done)
    elif tasks:
        out = studies[0][1]
        folder, label = (out, out.name) if len(studies) == 1 else (out.parent, f"{out.name}-and-{len(studies) - 1}")
        parameters = {"name": f"equilibria-{label}", "tasks_per_node": 1, "cpus_per_task": processes * threads,
                      "gpus_per_node": gpus, **(cluster or {})}
        run_with_submitit(tasks, folder / "submitit", launcher.removeprefix("submitit-"), parameters)
        for task in tasks:
            done(task)
    return all_runs


def _records(run_dir: Path) -> list[dict]:
    """The whole lines of ``run_dir/metrics.jsonl`` ([] without one; a torn last line left out)."""
    path = run_dir / "metrics.jsonl"
    records = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _cost(records: list[dict]) -> tuple[int, float] | None:
    """(steps, seconds) a run's records account for: its training time and every evaluation's
    (``eval_seconds``; none in records written before it was logged); None before its first step."""
    timed = [r for r in records if r.get("step", 0) > 0 and "seconds" in r]
    return None if not timed else (timed[-1]["step"], _segment_cost(records, 0, timed[-1]["step"]))


def _segment_cost(records: list[dict], start: int, end: int) -> float | None:
    """Seconds a finished run's records account for from step ``start`` to ``end``: the training time
    between them and the evaluations after ``start``; None if the records do not reach ``end``."""
    timed = [r for r in records if "seconds" in r and r.get("step", 0) > 0]
    if not timed or timed[-1]["step"] < end:
        return None
    at_start = max((r["seconds"] for r in timed if r["step"] <= start), default=0.0)
    at_end = max(r["seconds"] for r in timed if r["step"] <= end)
    return at_end - at_start + sum(r.get("eval_seconds", 0.0) for r in records if start < r.get("step", 0) <= end)


def _time_left(start: int, end: int, rate: float, finished_records: list[list[dict]]) -> float:
    """Seconds a run has left from step ``start`` to ``end``: the mean of what the group's finished runs
    took over those steps (a method may cost more early: the lens until it switches itself off), else
    ``rate`` per step (a probe's rate is of this machine: it is given no records)."""
    segments = [c for records in finished_records if (c := _segment_cost(records, start, end)) is not None]
    return sum(segments) / len(segments) if segments else (end - start) * rate


def probe(experiment: Experiment, group: str, steps: int, threads: int = 1,
          extra: list[str] | None = None) -> float:
    """Seconds per step of ``group`` measured here: its first seed trained for ``steps`` steps in a
    temporary directory, evaluated once at the end; the training time per step plus the evaluation's
    time divided by the run's ``eval.every``. One-time costs (building the networks, the evaluation's
    reference features) are left out, as the runs pay them once."""
    from equilibria.training.run import train

    if steps < 1:
        raise ConfigError(f"probe: got {steps} steps; allowed: an integer >= 1")
    spec = experiment.groups[group]
    overrides = [*experiment.overrides, *spec.overrides, *(extra or []), f"seed={experiment.seeds[0]}",
                 f"threads={threads}", "log.progress=false", "log.tensorboard=false"]
    every = load_config(spec.config, overrides).eval.every
    short = [f"train.steps={steps}", f"log.every={steps}", f"log.sample_every={steps}",
             f"log.checkpoint_every={steps}", *([f"eval.every={steps}"] if every else [])]
    with tempfile.TemporaryDirectory(prefix=f"probe-{group}-") as directory:
        train(load_config(spec.config, [*overrides, *short]), Path(directory) / group)
        records = _records(Path(directory) / group)
    seconds = max(r["seconds"] for r in records) / steps
    return seconds + (sum(r.get("eval_seconds", 0.0) for r in records) / every if every else 0.0)


def _checkpoint_step(run_dir: Path) -> int:
    """The step a partial run resumes from: its newest checkpoint's."""
    return checkpoint.step_of(checkpoint.checkpoints(run_dir / "checkpoints")[-1])


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def _rate_text(rate: float | None, recorded: float | None, probed: bool) -> str:
    """A row's time per 1000 steps: the rate used; beside a probe's, the runs' own (``recorded``)."""
    if rate is None:
        return ""
    if not probed:
        return f"{1000 * rate:.3g} s"
    return f"{1000 * rate:.3g} s (probe" + ("" if recorded is None else f"; runs {1000 * recorded:.3g} s") + ")"


def progress(experiment: Experiment, out: Path, jobs: int = 1, extra: list[str] | None = None,
             probe_steps: int = 0, threads: int = 1) -> str:
    """Where an experiment stands: per group, its runs done, partial (with the step each resumes from) and new,
    the time per 1000 steps (training and evaluation) measured on its runs so far, and the time left (each
    unfinished run's steps at the mean time the group's finished runs took over those steps, else at that
    rate: ``_time_left``); then the total, in core time and in wall-clock time at ``jobs`` runs at a time.
    With ``probe_steps`` > 0, each group with steps left is timed here by ``probe`` (marked "probe", beside
    its runs' rate, which may have been measured on another machine), at that rate throughout; otherwise a
    group without a measured run is not counted."""
    rows, unknown, total_left = [], [], 0.0
    by_group: dict[str, list[tuple[RunTask, list[dict]]]] = {name: [] for name in experiment.groups}
    for name, _, task in _tasks(experiment, out, extra):
        by_group[name].append((task, _records(task.run_dir)))
    counts = {"done": 0, "partial": 0, "new": 0}
    for name, tasks in by_group.items():
        states = [(task, records, task.state()) for task, records in tasks]
        for *_, state in states:
            counts[state] += 1
        measured = [cost for _, records, _ in states if (cost := _cost(records)) is not None]
        recorded = sum(s for _, s in measured) / sum(n for n, _ in measured) if measured else None
        start = {task.label: _checkpoint_step(task.run_dir) if state == "partial" else 0 for task, _, state in states}
        left_steps = sum(task.steps - start[task.label] for task, _, state in states if state != "done")
        partial = ", ".join(f"{task.run_dir.name} at {start[task.label]}" for task, _, state in states
                            if state == "partial")
        probed = left_steps > 0 and probe_steps > 0
        if probed:
            print(f"{name}: probing {probe_steps} steps", file=sys.stderr, flush=True)
        rate = probe(experiment, name, probe_steps, threads, extra) if probed else recorded
        if rate is None and left_steps:
            unknown.append(name)
        finished_records = [] if probed else [records for _, records, state in states if state == "done"]
        left = None if rate is None else sum(_time_left(start[task.label], task.steps, rate, finished_records)
                                             for task, _, state in states if state != "done")
        total_left += left or 0.0
        rows.append(f"| {name} | {sum(s == 'done' for *_, s in states)} | {partial} | "
                    f"{sum(s == 'new' for *_, s in states)} | "
                    f"{_rate_text(rate, recorded, probed)} | "
                    f"{'?' if left is None else _duration(left)} |")
    lines = [f"{out}: {counts['done']} of {sum(counts.values())} runs done, {counts['partial']} partial, "
             f"{counts['new']} new", "",
             "| group | done | partial (the step it resumes from) | new | time per 1000 steps | left |",
             "| --- | --- | --- | --- | --- | --- |", *rows, "",
             f"Left: about {_duration(total_left)} of training and evaluation, {_duration(total_left / jobs)} at "
             f"--jobs {jobs}" + (f"; not counted, no run measured yet: {', '.join(unknown)} (--probe STEPS times "
                                 "them)" if unknown else "") + "."]
    return "\n".join(lines) + "\n"


RECORD_FILES = ("config.yaml", "metrics.jsonl")


def finished(run_dir: Path, steps: int | None = None) -> bool:
    """Whether the run in ``run_dir`` has done ``steps`` (an experiment's, which may be more than the run
    was started with), by default the steps its ``config.yaml`` asks for."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        return False
    steps = steps or int(yaml.safe_load(config_path.read_text())["train"]["steps"])
    return RunTask(run_dir.name, run_dir, config_path, [], steps).state() == "done"


def run_steps(experiment: Experiment, out: Path, extra: list[str] | None = None) -> dict[Path, int]:
    """The steps each run of the experiment is to reach (``finished``'s ``steps``), by run directory."""
    return {task.run_dir: task.steps for _, _, task in _tasks(experiment, out, extra)}


def archive(runs: dict[str, list[Path]], out: Path, dest: Path, steps: dict[Path, int] | None = None) -> list[Path]:
    """Copy the record of every finished run (its ``config.yaml`` and ``metrics.jsonl``, not its
    checkpoints or samples) to ``dest/<group>/s<seed>``, and ``out``'s report and curves to ``dest``:
    a few kilobytes a run, enough to rewrite the report (``--report-only --out DEST``) and, copied
    back into an experiment's directory, counted as done (``RunTask.state``). Unfinished runs are
    left out (``steps``: those each run is to reach, ``run_steps``; by default its config's). Returns the
    run directories written."""
    if dest.resolve() == out.resolve():
        raise ConfigError(f"archive: got {str(dest)!r}, the experiment's own directory; allowed: another directory")
    written = []
    for name, run_dirs in runs.items():
        for run_dir in (r for r in run_dirs if finished(r, (steps or {}).get(r))):
            target = dest / name / run_dir.name
            target.mkdir(parents=True, exist_ok=True)
            for file in RECORD_FILES:
                shutil.copy2(run_dir / file, target / file)
            written.append(target)
    dest.mkdir(parents=True, exist_ok=True)  # the report, even before any run has finished
    for file in [out / "report.md", out / "experiment.json", *sorted(out.glob("curves-*.png"))]:
        if file.is_file():
            shutil.copy2(file, dest / file.name)
    return written


def write_report(runs: dict[str, list[Path]], metrics: list[str], out: Path, title: str,
                 baselines: dict[str, list[str]] | None = None, failure: tuple[str, float] | None = None,
                 command: str = "", ratio: Collection[str] = (), at: Sequence[int] = (),
                 steps: dict[Path, int] | None = None, reach: Mapping[str, float] | None = None) -> Path:
    """``out/report.md`` over the finished runs: per metric, a table of best and final values with 95%
    intervals over seeds, the change over the last quarter of training,
    each group against its baselines (``baselines``: group -> its baselines; difference, interval, Welch's
    t-test, verdict; for the metrics in ``ratio``, the ratio of geometric means and Welch's t-test on
    the logs), and a curves PNG; with ``failure`` (metric, threshold), the share of failed runs
    per group (Fisher's exact test against the baseline); with ``at``, the eval/ metrics' values at those
    steps in both tables; with ``reach`` (metric -> level), the steps and seconds of training each group's
    runs took to reach the level, compared by the ratio of the medians (``report.reach_table``). A run
    counts once it has done its ``steps`` (``run_steps``; by default its config's)."""
    lines = [f"# {title}", ""]
    total = sum(map(len, runs.values()))
    run_targets = {f"{name}/{r.name}": steps[r] for name, run_dirs in runs.items() for r in run_dirs
                   if steps and r in steps}  # for equilibria report, which has no experiment file
    runs = {name: [r for r in run_dirs if finished(r, (steps or {}).get(r))] for name, run_dirs in runs.items()}
    done = sum(map(len, runs.values()))
    if done < total:
        lines += [f"{done} of {total} runs have finished; the tables and curves leave out the others.", ""]
    if baselines:
        lines += ["A verdict **holds** (or **fails**) when the 95% bootstrap interval of the difference lies wholly on "
                  "the better (worse) side of 0, Welch's t-test gives p < 0.05, and the group behind could not close "
                  "the gap in as many steps again at the fastest rate of improvement that the interval of its change "
                  "over the last quarter allows (for best values, the change of its best so far); else it is "
                  "**undecided**.", ""]
    if baselines and ratio:
        lines += [f"{', '.join(ratio)}: compared by the ratio of the geometric means over seeds (exp of the "
                  "difference of the mean logs); the interval, Welch's test and the rule above are on the logs, so "
                  "1 takes the place of 0.", ""]
    if failure is not None:
        key, threshold = failure
        lower = not key.endswith(report.HIGHER_IS_BETTER)
        lines += ["## Failed runs", "", report.failure_table(report.summary(runs, key, lower), key, threshold, lower,
                                                            baselines), ""]
    for key in metrics:
        slug = key.replace("/", "-")
        lower = not key.endswith(report.HIGHER_IS_BETTER)
        at_steps = at if key.startswith("eval/") else ()
        rows = report.summary(runs, key, lower_is_better=lower, at=at_steps)
        report.plot_curves(runs, key, out / f"curves-{slug}.png", title=f"{title}: {key}", log=key in ratio)
        note = (f"{'lower' if lower else 'higher'} is better" if key.startswith("eval/")
                else "a diagnostic: 'best' is the lowest value")
        lines += [f"## {key} ({note})", "", report.markdown_table(rows, key), ""]
        if baselines and key.startswith("eval/"):
            compared = report.summary(runs, key, lower, log=True, at=at_steps) if key in ratio else rows
            lines += [report.comparison_table(compared, baselines, key, lower, ratio=key in ratio), ""]
        if key in (reach or {}):
            lines += [f"### Time to reach {key} {'<=' if lower else '>='} {reach[key]:g}", "",
                      "Each run's first evaluation at the level or better; a run that never got there counts as "
                      "slower than every run that did (Mann-Whitney U test, two-sided; percentile bootstrap "
                      "interval of the ratio of the median times).", "",
                      report.reach_table(runs, key, reach[key], lower, baselines), ""]
        lines += [f"![{key}](curves-{slug}.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    (out / "experiment.json").write_text(json.dumps({  # what equilibria report needs to state the claims
        "title": title, "metrics": metrics, "baselines": baselines or {}, "failure": failure, "command": command,
        "ratio": list(ratio), "at": list(at), "reach": dict(reach or {}), "steps": run_targets},
        indent=1) + "\n")
    return path
