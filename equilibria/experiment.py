"""Experiments: several configs (groups) x several seeds, run, resumed if interrupted, and reported.

An experiment file (YAML, safe loader)::

    seeds: [0, 1, 2]
    set: [data.root=../shared/data/mnist, data.split=test]     # overrides for every run
    metrics: [eval/fid]                                        # curves and tables in the report
    groups:
      advas: {config: configs/advas-mnist-wgangp-advas.yaml}
      baseline-nadv5: {config: configs/advas-mnist-wgangp-nadv5.yaml, set: [train.n_adv=5]}

Each run goes to ``OUT/<group>/s<seed>`` and is trained in a subprocess (``jobs`` at a time, each
with ``threads`` torch threads); a finished run is skipped and an interrupted one resumed, so the
same command continues an experiment. The report is ``OUT/report.md`` with one PNG of curves per
metric (against iterations and wall-clock time) and a table of best values.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from equilibria import report
from equilibria.training import checkpoint
from equilibria.training.config import ConfigError, load_config


@dataclass
class Group:
    config: Path
    overrides: list[str] = field(default_factory=list)


@dataclass
class Experiment:
    groups: dict[str, Group]
    seeds: list[int]
    overrides: list[str]
    metrics: list[str]


def _strings(value, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"experiment key {key!r}: got {value!r}; allowed: a list of key=value strings")
    return value


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file; every group's config is validated with its overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"experiment file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - {"seeds", "set", "metrics", "groups"}
    if unknown:
        raise ConfigError(f"unknown experiment key {sorted(unknown)[0]!r}; allowed: seeds, set, metrics, groups")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"experiment key 'seeds': got {seeds!r}; allowed: a non-empty list of integers >= 0")
    groups_data = data.get("groups")
    if not isinstance(groups_data, dict) or not groups_data:
        raise ConfigError(f"experiment key 'groups': got {groups_data!r}; allowed: a mapping name -> "
                          "{config: FILE, set: [key=value, ...]}")
    overrides = _strings(data.get("set"), "set")
    metrics = data.get("metrics", ["eval/fid"])
    groups = {}
    for name, spec in groups_data.items():
        if not isinstance(spec, dict) or "config" not in spec or set(spec) - {"config", "set"}:
            raise ConfigError(f"experiment group {name!r}: got {spec!r}; allowed: {{config: FILE, set: [...]}}")
        config = Path(spec["config"])
        if not config.is_absolute() and not config.exists():
            config = path.parent / config
        group = Group(config, _strings(spec.get("set"), f"groups.{name}.set"))
        load_config(group.config, [*overrides, *group.overrides])  # fail now, not after hours of training
        groups[str(name)] = group
    return Experiment(groups, seeds, overrides, _strings(metrics, "metrics"))


def _state(run_dir: Path, steps: int) -> str:
    """'done', 'partial' or 'new'."""
    found = checkpoint.checkpoints(run_dir / "checkpoints")
    if not found:
        return "new"
    return "done" if checkpoint.step_of(found[-1]) >= steps else "partial"


def run_experiment(experiment: Experiment, out: Path, *, jobs: int = 1, threads: int = 1,
                   extra: list[str] | None = None) -> dict[str, list[Path]]:
    """Train every (group, seed) that is not finished; return the run directories by group."""
    tasks, runs = [], {}
    for name, group in experiment.groups.items():
        runs[name] = []
        for seed in experiment.seeds:
            run_dir = out / name / f"s{seed}"
            runs[name].append(run_dir)
            overrides = [*experiment.overrides, *group.overrides, *(extra or []), f"seed={seed}",
                         f"threads={threads}", "log.progress=false"]
            steps = load_config(group.config, overrides).train.steps
            state = _state(run_dir, steps)
            if state == "new":
                command = ["train", str(group.config), "--run-dir", str(run_dir)]
                command += [a for o in overrides for a in ("--set", o)]
            elif state == "partial":
                command = ["resume", str(run_dir), "--set", f"train.steps={steps}"]
            else:
                print(f"{name}/s{seed}: done", flush=True)
                continue
            tasks.append((f"{name}/s{seed}", run_dir, command))

    def execute(task: tuple[str, Path, list[str]]) -> None:
        label, run_dir, command = task
        run_dir.mkdir(parents=True, exist_ok=True)
        print(f"{label}: {command[0]} ...", flush=True)
        with (run_dir / "stdout.log").open("a") as log:
            result = subprocess.run([sys.executable, "-m", "equilibria.cli.main", *command], stdout=log,
                                    stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise RuntimeError(f"{label} failed (exit {result.returncode}): see {run_dir / 'stdout.log'}")
        print(f"{label}: finished", flush=True)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(execute, task) for task in tasks]:
            future.result()
    return runs


def write_report(runs: dict[str, list[Path]], metrics: list[str], out: Path, title: str) -> Path:
    """``out/report.md``: a table of best values and a curves PNG per metric."""
    lines = [f"# {title}", ""]
    for key in metrics:
        slug = key.replace("/", "-")
        lower = not key.endswith(("is", "inception_score", "precision", "recall", "modes"))
        rows = report.summary(runs, key, lower_is_better=lower)
        report.plot_curves(runs, key, out / f"curves-{slug}.png", title=f"{title}: {key}")
        note = (f"{'lower' if lower else 'higher'} is better" if key.startswith("eval/")
                else "a diagnostic: 'best' is the lowest value")
        lines += [f"## {key} ({note})", "", report.markdown_table(rows, key), "", f"![{key}](curves-{slug}.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
