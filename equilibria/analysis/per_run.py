"""An analysis over several runs, one record per run: a study that was stopped resumes where it stopped."""

from __future__ import annotations

import json
import math
from argparse import Namespace
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from equilibria.files import write_atomically


def analyse_runs(args: Namespace, record_name: str, analyse: Callable[[Path, Path], dict]) -> list[dict]:
    """``analyse(run, directory)`` for each of ``args.runs``, its record written to ``directory/record_name``.

    ``directory`` is ``args.out/<run name>`` with several runs, and ``args.out`` (default: the run itself) with one.
    The settings are the other options of ``args``. A record already there for the same run and the same settings
    is read back instead of analysed again, so a study killed in its fourth run starts again at the fourth. Records
    are JSON: ``{"run", "settings", ...analyse's keys}``.
    """
    runs, out = args.runs, args.out
    settings = json.loads(json.dumps({k: v for k, v in vars(args).items() if k not in ("runs", "out")}, default=str))
    records = []
    for run in runs:
        directory = (out / run.name if len(runs) > 1 else out) if out is not None else run
        path = directory / record_name
        record = _read_record(path)
        if record is not None and record.get("run") == str(run) and record.get("settings") == settings:
            print(f"{run}: the record in {path} has these settings; not analysed again", flush=True)
            records.append(record)
            continue
        record = {"run": str(run), "settings": settings, **analyse(run, directory)}
        directory.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda f: f.write(json.dumps(record, indent=1).encode()))
        records.append(record)
    return records


def _read_record(path: Path) -> dict | None:
    """The record at ``path``; None if there is none, or if it is not a JSON object (edited by hand: it is
    analysed again and overwritten, with a line saying so)."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        record, why = None, f"not valid JSON ({error})"
    else:
        why = f"a JSON {type(record).__name__}, not an object"
    if isinstance(record, dict):
        return record
    print(f"{path}: {why}; analysed again", flush=True)
    return None


def split_finite(records: Sequence[dict], numbers: Callable[[dict], Iterable[float]]) -> tuple[list[dict], list[str]]:
    """The records whose ``numbers`` are all finite, and the runs of the others (a run that diverged to NaN)."""
    finite, diverged = [], []
    for record in records:
        if all(math.isfinite(x) for x in numbers(record)):
            finite.append(record)
        else:
            diverged.append(record["run"])
    return finite, diverged
