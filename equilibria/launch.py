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
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
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


STOPPED_CODES = (130, 143)  # the run stopped on SIGINT or SIGTERM with a checkpoint (equilibria.cli.main)


class RunJob:
    """A run's process: trains (or resumes) the run and returns "done" (nothing to train), "finished"
    or "stopped" (by a signal, with a checkpoint). As a submitit job, on preemption or timeout it stops
    the run with a checkpoint and asks submitit to requeue the job, which then resumes it."""

    def __init__(self, task: RunTask):
        self.task = task
        self._process: subprocess.Popen | None = None
        self._stop_sent = False

    def __call__(self) -> str:
        command = self.task.command()
        if command is None:
            return "done"
        self.task.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.task.run_dir / "stdout.log").open("a") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            code = self._process.wait()
        if code in STOPPED_CODES or (self._stop_sent and code < 0):  # < 0: killed before its handler was set
            return "stopped"
        if code != 0:
            raise RuntimeError(f"{self.task.label} failed (exit {code}): see {self.task.run_dir / 'stdout.log'}")
        return "finished"

    def stop(self) -> None:
        """Send the run's live process SIGTERM, once (it checkpoints after its iteration and exits); a
        no-op before the process starts and after it ends."""
        if not self._stop_sent and self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            self._stop_sent = True

    def checkpoint(self) -> Any:
        """Called by submitit on SLURM's (or its local executor's) signal before a timeout or preemption."""
        import submitit

        self.stop()
        if self._process is not None:
            self._process.wait()
        return submitit.helpers.DelayedSubmission(RunJob(self.task))

    def __getstate__(self) -> dict[str, Any]:
        return {"task": self.task, "_process": None, "_stop_sent": False}


def run_locally(tasks: list[RunTask], jobs: int, on_done: Callable[[RunTask], None] | None = None) -> None:
    """Each task in a subprocess of this machine, ``jobs`` at a time, started in order; ``on_done(task)``
    in this thread as each finishes (while the others train). A failed run does not stop the others:
    the failures are raised together at the end.

    SIGTERM or SIGINT to this process stops the experiment: no further run starts, each running one
    is sent SIGTERM (it checkpoints after its current iteration and exits), and once they have ended
    ``RunStopped`` is raised (exit code 143 or 130); the same command continues the experiment."""
    from equilibria.training.run import RunStopped, stop_requests  # torch: only when runs are launched

    running: dict[str, RunJob] = {}
    stopping = threading.Event()

    def execute(task: RunTask) -> tuple[RunTask, str]:
        if stopping.is_set():
            return task, "not started"
        print(f"{task.label}: {task.state()} ...", flush=True)
        running[task.label] = job = RunJob(task)
        try:
            outcome = job()
        finally:
            del running[task.label]
        print(f"{task.label}: {outcome}", flush=True)
        return task, outcome

    failures, outcomes = [], []
    with stop_requests() as requested, ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(execute, task) for task in tasks]
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            finished = sorted(finished, key=futures.index)  # those done together: in the order started
            if requested:
                stopping.set()  # a job started since the last look is signalled at the next one
                for job in list(running.values()):
                    job.stop()
            for future in finished:
                try:
                    task, outcome = future.result()
                except RuntimeError as error:
                    failures.append(str(error))
                    continue
                outcomes.append(outcome)
                if outcome == "stopped" and not requested:
                    failures.append(f"{task.label} stopped by a signal before its last step (a checkpoint "
                                    f"written): see {task.run_dir / 'stdout.log'}")
                elif outcome in ("done", "finished") and on_done is not None:
                    on_done(task)
    if requested and {"stopped", "not started"} & set(outcomes):  # not when every run had already ended
        name = signal.Signals(requested[0]).name
        raise RunStopped(f"experiment stopped by {name}: {outcomes.count('stopped')} runs stopped with a "
                         f"checkpoint, {outcomes.count('not started')} not started"
                         + (f", {len(failures)} failed ({'; '.join(failures)})" if failures else "")
                         + "; continue with the same command", 128 + requested[0])
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
