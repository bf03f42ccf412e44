"""Where an experiment's runs train: subprocesses on this machine, or jobs through submitit (on
SLURM, or submitit's local executor), each run on one process or on several under torchrun.

A run's command is decided when it starts, from its run directory: ``train`` when it has no
checkpoint, ``resume`` when its last checkpoint is short of its steps, nothing when it is finished.
So a launcher started again continues an experiment, and a job that SLURM preempts or times out
resumes when submitit requeues it: on submitit's signal the job stops its run with SIGTERM (the run
checkpoints after its current iteration and exits) and asks to be requeued.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAUNCHERS = ("local", "submitit-local", "slurm")


def recorded_steps(run_dir: Path) -> int:
    """The step of the last record in ``run_dir/metrics.jsonl`` (0 without one)."""
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    try:
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return 0  # a torn last line: the run is not finished


@dataclass
class RunTask:
    """One run of an experiment: ``equilibria train CONFIG --set ...`` into ``run_dir``, ``steps`` long,
    on ``processes`` processes (torchrun, one machine)."""

    label: str
    run_dir: Path
    config: Path
    overrides: list[str]
    steps: int
    processes: int = 1

    def state(self) -> str:
        """'done', 'partial' or 'new'. A run without checkpoints is done when its metrics reach its
        steps: the record of a finished run kept without its weights (``equilibria.experiment.archive``)."""
        from equilibria.training import checkpoint  # here: the command line reads LAUNCHERS without torch

        found = checkpoint.checkpoints(self.run_dir / "checkpoints")
        if not found:
            return "done" if recorded_steps(self.run_dir) >= self.steps else "new"
        return "done" if checkpoint.step_of(found[-1]) >= self.steps else "partial"

    def command(self) -> list[str] | None:
        """The process to start for the run's next part, or None when the run is finished."""
        state = self.state()
        if state == "done":
            return None
        if state == "new":
            args = ["train", str(self.config), "--run-dir", str(self.run_dir),
                    *[a for o in self.overrides for a in ("--set", o)]]
        else:
            args = ["resume", str(self.run_dir), "--set", f"train.steps={self.steps}"]
        if self.processes == 1:
            return [sys.executable, "-m", "equilibria", *args]
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.processes}",
                "-m", "equilibria", *args]


class RunJob:
    """A run as a submitit job: trains (or resumes) it, and on preemption or timeout stops it with a
    checkpoint and asks submitit to requeue the job, which then resumes it."""

    def __init__(self, task: RunTask):
        self.task = task
        self._process: subprocess.Popen | None = None

    def __call__(self) -> str:
        command = self.task.command()
        if command is None:
            return "done"
        self.task.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.task.run_dir / "stdout.log").open("a") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            code = self._process.wait()
        if code != 0:
            raise RuntimeError(f"{self.task.label} failed (exit {code}): see {self.task.run_dir / 'stdout.log'}")
        return "finished"

    def checkpoint(self) -> Any:
        """Called by submitit on SLURM's (or its local executor's) signal before a timeout or preemption."""
        import submitit

        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)  # the run checkpoints after its iteration and exits
            self._process.wait()
        return submitit.helpers.DelayedSubmission(RunJob(self.task))

    def __getstate__(self) -> dict[str, Any]:
        return {"task": self.task, "_process": None}


def run_locally(tasks: list[RunTask], jobs: int, on_done: Callable[[RunTask], None] | None = None) -> None:
    """Each task in a subprocess of this machine, ``jobs`` at a time, started in order; ``on_done(task)``
    in this thread as each finishes (while the others train). A failed run does not stop the others:
    the failures are raised together at the end."""

    def execute(task: RunTask) -> RunTask:
        print(f"{task.label}: {task.state()} ...", flush=True)
        RunJob(task)()
        print(f"{task.label}: finished", flush=True)
        return task

    failures = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in as_completed([pool.submit(execute, task) for task in tasks]):
            try:
                task = future.result()
            except RuntimeError as error:
                failures.append(str(error))
                continue
            if on_done is not None:
                on_done(task)
    if failures:
        raise RuntimeError("\n".join(failures))


def run_with_submitit(tasks: list[RunTask], folder: Path, cluster: str, parameters: dict[str, Any]) -> None:
    """Each task as a submitit job (``cluster`` "slurm" or "local"), waiting for all of them.

    ``parameters`` are submitit's executor parameters (``timeout_min``, ``gpus_per_node``,
    ``cpus_per_task``, ``slurm_partition``, ...); submitit's own files go to ``folder``."""
    try:
        import submitit
    except ImportError:
        raise RuntimeError("the submitit launchers need submitit: pip install 'equilibria[cluster]'") from None
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(**parameters)
    with executor.batch():
        submitted = [(task, executor.submit(RunJob(task))) for task in tasks]
    for task, job in submitted:
        print(f"{task.label}: submitted as job {job.job_id}", flush=True)
    failures = []
    for task, job in submitted:
        try:
            print(f"{task.label}: {job.result()}", flush=True)
        except Exception as error:  # noqa: BLE001 - every job's failure is reported, then all at once
            failures.append(f"{task.label}: {str(error).strip().splitlines()[-1]} (submitit logs: "
                            f"{job.paths.stderr})")
    if failures:
        raise RuntimeError("runs failed:\n" + "\n".join(failures))
