"""Launchers of an experiment's runs: submitit's local executor (the SLURM launcher's code path on
this machine), a job stopped by submitit's signal that checkpoints and resumes when requeued, and
each run on two processes under torchrun."""

import threading
import time

import pytest
from test_run import metrics

from equilibria.experiment import load_experiment, run_experiment
from equilibria.launch import RunJob, RunTask
from equilibria.training.config import ConfigError

pytest.importorskip("submitit", reason="the submitit launchers need submitit (the test extras install it)")

SMALL = ("train: {steps: 4, batch_size: 16}\ngenerator: {width: 8}\ndiscriminator: {width: 8}\n"
         "log: {every: 2, tensorboard: false, checkpoint_every: 2}\n")


def experiment_file(tmp_path, config_text=SMALL, seeds="[0, 1]"):
    config = tmp_path / "c.yaml"
    config.write_text(config_text)
    path = tmp_path / "e.yaml"
    path.write_text(f"seeds: {seeds}\nmetrics: [loss_adv]\ngroups: {{small: {{config: {config}}}}}\n")
    return load_experiment(path)


def test_submitit_local_jobs_train_the_runs_then_skip_them(tmp_path, capsys):
    experiment = experiment_file(tmp_path)
    runs = run_experiment(experiment, tmp_path / "out", launcher="submitit-local", cluster={"timeout_min": 10})
    out = capsys.readouterr().out
    assert out.count("submitted as job") == 2 and out.count(": finished") == 2
    for run in runs["small"]:
        assert [r["step"] for r in metrics(run)] == [2, 4]
    assert (tmp_path / "out" / "submitit").is_dir()  # submitit's job files, apart from the runs
    run_experiment(experiment, tmp_path / "out", launcher="submitit-local")
    out = capsys.readouterr().out
    assert "small/s0: done" in out and "small/s1: done" in out and "submitted" not in out


def test_a_job_stopped_by_submitit_checkpoints_and_its_requeued_job_resumes(tmp_path):
    long = SMALL.replace("steps: 4", "steps: 400").replace("every: 2", "every: 1")
    experiment = experiment_file(tmp_path, long, seeds="[0]")
    group = experiment.groups["small"]
    task = RunTask("small/s0", tmp_path / "run", group.config, ["log.progress=false", "threads=1"], 400)
    job = RunJob(task)
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(job()), daemon=True)
    thread.start()  # the stopped run exits with 143: the first job reports it stopped
    deadline = time.monotonic() + 120
    while not (task.run_dir / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    requeued = job.checkpoint()  # what submitit calls on SLURM's signal
    thread.join(timeout=60)
    assert outcome == ["stopped"] and task.state() == "partial"  # stopped with a checkpoint before its 400 steps
    stopped_at = metrics(task.run_dir)[-1]["step"]
    assert requeued.function.task == task
    assert requeued.function() == "finished"  # the requeued job resumes, not restarts
    steps = [r["step"] for r in metrics(task.run_dir)]
    assert steps == list(range(1, 401)) and stopped_at < 400


def test_each_run_on_two_processes_under_torchrun(tmp_path):
    experiment = experiment_file(tmp_path, seeds="[0]")
    runs = run_experiment(experiment, tmp_path / "out", processes=2)
    run = runs["small"][0]
    assert [r["step"] for r in metrics(run)] == [2, 4]
    assert "on 2 processes (gloo), 8 of each global batch of 16" in (run / "stdout.log").read_text()


def test_bad_launcher_options_are_refused(tmp_path):
    experiment = experiment_file(tmp_path)
    with pytest.raises(ConfigError, match="launcher: got 'pbs'; allowed: local, submitit-local, slurm"):
        run_experiment(experiment, tmp_path / "out", launcher="pbs")
    with pytest.raises(ConfigError, match="processes: got 3 for small .*batch_size=16.*divisor"):
        run_experiment(experiment, tmp_path / "out", processes=3)
