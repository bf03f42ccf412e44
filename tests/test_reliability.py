"""A run is never silently wrong and never lost: non-finite quantities stop it (or are skipped), signals
and errors checkpoint it, damaged files are survived, and SIGKILL at random moments changes nothing."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_run import SMALL, final_weights, metrics

from equilibria.cli.main import main
from equilibria.core.components import Component
from equilibria.core.method import Contribution, Method
from equilibria.core.sections import Bool, Int, MethodConfig, Str, option
from equilibria.methods import METHODS, register
from equilibria.training import checkpoint
from equilibria.training.config import ConfigError, load_config
from equilibria.training.run import load_run_config, train

ROOT = Path(__file__).parents[1]
BASE = [s for s in SMALL if not s.startswith("objective=")] + ["log.every=2", "log.checkpoint_every=3"]


# -- a method that injects NaN -------------------------------------------------------------------------
class Poison(Component):
    """At the end of iteration ``at``, fills a network's parameters with NaN; or, with target ``data``,
    makes the real batches of iteration ``at`` (and every later one if ``persistent``) NaN."""

    name = "poison"

    def __init__(self, at: int, target: str, persistent: bool):
        self.at, self.target, self.persistent, self.iteration = at, target, persistent, 0

    def _active(self, iteration: int) -> bool:
        return iteration == self.at or (self.persistent and iteration > self.at)

    def transform_real(self, real):
        return real * float("nan") if self.target == "data" and self._active(self.iteration + 1) else real

    def after_iteration(self, trainer, real):
        self.iteration = trainer.step + 1
        if self.target != "data" and self.iteration == self.at:
            modules = {"generator": trainer.generator, "discriminator": trainer.discriminator}
            modules.update({c.name: next(iter(c.modules().values())) for c in trainer.components if c.modules()})
            with torch.no_grad():
                for p in modules[self.target].parameters():
                    p.fill_(float("nan"))
        return {}

    def state_dict(self):
        return {"iteration": self.iteration}

    def load_state_dict(self, state):
        self.iteration = state["iteration"]


class PoisonConfig(MethodConfig):
    """``poison``: NaN injection for tests."""

    at: Int = option(4, "the iteration that poisons", ge=1)
    target: Str = option("discriminator", "generator, discriminator, a method's name, or data")
    persistent: Bool = option(False, "data: every iteration from ``at`` on")


POISON = Method("poison", PoisonConfig, lambda s, c: Contribution(components=[Poison(s.at, s.target, s.persistent)]))


@pytest.fixture
def poison():
    register(POISON)
    yield
    METHODS.pop("poison")


def run_cli(args, run_dir):
    return main(["train", "--run-dir", str(run_dir), *[a for o in args for a in ("--set", o)]])


def steps_of(run_dir):
    return [checkpoint.step_of(p) for p in checkpoint.checkpoints(Path(run_dir) / "checkpoints")]


CASES = {
    "alternating": (["objective=wgan"], "discriminator"),
    "simultaneous": (["objective=wgan", "train.update=simultaneous", "train.n_adv=1"], "generator"),
    "joint (cgd)": (["objective=wgan", "cgd.enabled=true", "train.n_adv=1", "cgd.lr=1e-3"], "generator"),
    "advas": (["objective=wgan", "advas.enabled=true", "advas.mode=hvp"], "generator"),
    "lens": (["objective=wgan", "lens.enabled=true", "lens.width=4", "lens.blocks=1"], "lens"),
    "vral": (["objective=vral", "vral.enabled=true", "penalties.gradient_penalty=0"], "meta"),
    "r3gan": (["r3gan.enabled=true", "penalties.gradient_penalty=0"], "discriminator"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, capsys, poison, case):
    extra, target = CASES[case]
    code = run_cli(BASE + extra + ["poison.enabled=true", "poison.at=4", f"poison.target={target}"], tmp_path)
    err = capsys.readouterr().err
    assert code == 3, err
    assert "non-finite" in err and "at step 5" in err and "step-00000003.pt (step 3)" in err
    assert steps_of(tmp_path) == [3]  # the step-6 checkpoint was never written
    for record in metrics(tmp_path):
        assert record["step"] <= 4 and "nan" not in json.dumps(record).lower()


def test_parameters_that_overflow_are_caught_before_a_checkpoint(tmp_path, capsys, poison):
    """Poisoned at the end of iteration 3, the checkpoint of step 3 would hold NaN weights."""
    code = run_cli(BASE + ["objective=wgan", "poison.enabled=true", "poison.at=3", "poison.target=generator"],
                   tmp_path)
    err = capsys.readouterr().err
    assert code == 3 and "non-finite generator parameters" in err and "at step 3" in err
    assert steps_of(tmp_path) == []


def test_huge_learning_rates_stop_the_run(tmp_path, capsys):
    code = run_cli(BASE + ["objective=wgan", "optim.adversary.name=sgd", "optim.adversary.lr=1e10",
                           "optim.generator.lr=1e10"], tmp_path)
    assert code == 3 and "non-finite" in capsys.readouterr().err


def test_skip_mode_skips_a_transient_nan_and_counts_it(tmp_path, poison):
    run = train(load_config(None, BASE + ["objective=wgan", "train.nonfinite=skip", "poison.enabled=true",
                                          "poison.at=5", "poison.target=data"]), tmp_path)
    records = {r["step"]: r for r in metrics(run)}
    assert records[4]["skipped"] == 0 and records[6]["skipped"] == 2  # both adversary steps of iteration 5
    assert records[12]["skipped"] == 2 and steps_of(run)[-1] == 12
    for a in final_weights(run):
        assert all(torch.isfinite(t).all() for t in a.values())


def test_skip_mode_stops_after_too_many_skips_in_a_row(tmp_path, capsys, poison):
    code = run_cli(BASE + ["objective=wgan", "train.nonfinite=skip", "train.max_skips=2", "poison.enabled=true",
                           "poison.at=3", "poison.target=data", "poison.persistent=true"], tmp_path)
    err = capsys.readouterr().err
    assert code == 3 and "3 iterations in a row skipped, more than max_skips=2" in err and "at step 5" in err


def test_skip_mode_is_refused_with_joint_updates():
    with pytest.raises(ConfigError, match="'train.nonfinite': got 'skip' with train.update=joint"):
        load_config(None, ["cgd.enabled=true", "train.nonfinite=skip"])


# -- signals and errors checkpoint the run ----------------------------------------------------------
def start(run_dir, extra=()):
    command = [sys.executable, "-m", "equilibria.cli.main", "train", "--run-dir", str(run_dir),
               *[a for o in [*BASE, "objective=wgan", "train.steps=100000", "log.checkpoint_every=100000", *extra]
                 for a in ("--set", o)]]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def wait_for_training(process, run_dir, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if (run_dir / "metrics.jsonl").exists() and (run_dir / "metrics.jsonl").stat().st_size > 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"the run did not start: {process.stderr.read() if process.poll() is not None else ''}")


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_checkpoints_the_last_completed_step_and_resumes_exactly(tmp_path, signum, code):
    process = start(tmp_path / "run")
    wait_for_training(process, tmp_path / "run")
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    (step,) = steps_of(tmp_path / "run")
    assert f"stopped by {signal.Signals(signum).name} after step {step}" in err and "equilibria resume" in err
    # resumed to a few more steps, it equals a run that was never stopped
    target = step + 3
    resumed = train(load_run_config(tmp_path / "run", [f"train.steps={target}"]), tmp_path / "run", resume=True)
    straight = train(load_config(None, [*BASE, "objective=wgan", f"train.steps={target}"]), tmp_path / "straight")
    assert metrics(resumed) == metrics(straight)
    for a, b in zip(final_weights(resumed), final_weights(straight)):
        for key in a:
            assert torch.equal(a[key], b[key])


def test_a_run_directory_that_another_process_trains_is_refused_and_free_again_once_it_stops(tmp_path):
    """Two processes training one run interleave their checkpoints and metrics (an experiment restarted
    while the runs of the first were still going did so): the second is refused before it reads or writes."""
    run = tmp_path / "run"
    process = start(run, ["log.checkpoint_every=3"])
    try:
        wait_for_training(process, run)
        deadline = time.monotonic() + 120
        while not checkpoint.checkpoints(run / "checkpoints") and time.monotonic() < deadline:
            time.sleep(0.05)
        before = (run / "metrics.jsonl").read_text()
        # train.steps=1: were it not refused, it would stop at once (fewer steps than the checkpoint's)
        with pytest.raises(ConfigError, match=f"process {process.pid} is training it; allowed: one process per run"):
            train(load_config(None, [*BASE, "objective=wgan", "train.steps=1"]), run, resume=True)
        assert (run / "metrics.jsonl").read_text().startswith(before)  # only the other process wrote
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    step = max(steps_of(run))
    resumed = train(load_run_config(run, [f"train.steps={step + 2}"]), run, resume=True)
    assert metrics(resumed)[-1]["step"] == step + 2


def test_a_lock_is_released_when_its_process_is_killed_and_a_refused_new_directory_is_removed(tmp_path):
    from equilibria.files import DirectoryLocked, locked

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from equilibria.files import locked\n"
                               f"with locked({str(tmp_path / 'd')!r}):\n    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(DirectoryLocked) as refused:
        with locked(tmp_path / "d"):
            pass
    assert refused.value.pid == str(holder.pid)
    holder.kill()
    holder.wait()
    with locked(tmp_path / "d"):  # SIGKILL left no stale lock
        pass
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):  # refused after the lock
        train(load_config(None, BASE), tmp_path / "new", resume=True)
    assert not (tmp_path / "new").exists()  # the directory the lock created is gone with it


def test_an_error_between_iterations_writes_a_checkpoint(tmp_path, monkeypatch):
    from equilibria.training import log as log_module

    calls = []

    def failing_samples(self, path, step, *args, **kwargs):
        calls.append(step)
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(log_module.RunLog, "samples", failing_samples)
    with pytest.raises(RuntimeError, match="plotting failed") as error:
        train(load_config(None, [*BASE, "objective=wgan"]), tmp_path)
    assert steps_of(tmp_path) == [3, 6] and calls == [6]  # step 6 written on the way out
    assert any("checkpoint" in note and "step 6 written" in note for note in error.value.__notes__)


def test_an_error_inside_an_iteration_keeps_the_last_checkpoint_and_says_why(tmp_path, monkeypatch):
    from equilibria.core.trainer import Trainer

    original = Trainer.train_step

    def failing(self, diagnostics=False):
        if self.step == 4:
            raise RuntimeError("out of memory")
        return original(self, diagnostics)

    monkeypatch.setattr(Trainer, "train_step", failing)
    with pytest.raises(RuntimeError, match="out of memory") as error:
        train(load_config(None, [*BASE, "objective=wgan"]), tmp_path)
    assert steps_of(tmp_path) == [3]
    assert any("middle of iteration 5" in note and "step-00000003.pt" in note for note in error.value.__notes__)


# -- damaged files -------------------------------------------------------------------------------------
SHORT = [*BASE, "objective=wgan", "train.steps=6"]


@pytest.mark.parametrize("damage", ["truncated", "empty", "random"])
def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, capsys, damage):
    run = train(load_config(None, SHORT), tmp_path / "run")
    newest = run / "checkpoints" / "step-00000006.pt"
    data = newest.read_bytes()
    newest.write_bytes({"truncated": data[: len(data) // 2], "empty": b"",
                        "random": os.urandom(len(data))}[damage])
    capsys.readouterr()
    train(load_run_config(run, ["train.steps=12"]), run, resume=True)
    err = capsys.readouterr().err
    assert "skipped checkpoint" in err and "step-00000006.pt" in err and "is damaged" in err
    full = train(load_config(None, [*BASE, "objective=wgan"]), tmp_path / "full")
    assert metrics(run) == metrics(full)


def test_an_incompatible_checkpoint_is_reported_in_one_line(tmp_path, capsys):
    run = train(load_config(None, SHORT), tmp_path / "run")
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("width: 8", "width: 16", 1))
    assert main(["resume", str(run), "--set", "train.steps=12"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "does not fit this run: generator." in err and "in the checkpoint and" in err and "in this run" in err
    assert main(["sample", str(run), "-n", "4", "--out", str(tmp_path / "s.png")]) == 2
    assert "does not fit this run" in capsys.readouterr().err
    (run / "config.yaml").write_text(config.replace("lens:\n  enabled: false", "lens:\n  enabled: true"))
    assert main(["resume", str(run), "--set", "train.steps=12"]) == 2
    assert "methods: the checkpoint has none, this run lens" in capsys.readouterr().err


def test_a_torn_last_metrics_line_is_dropped_with_a_warning(tmp_path):
    half = train(load_config(None, SHORT), tmp_path / "half")
    with (half / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 8, "seconds": 1.0, "loss_a')  # the disk filled in the middle of a line
    with pytest.warns(UserWarning, match=r"metrics.jsonl: dropped its torn last line"):
        train(load_run_config(half, ["train.steps=12"]), half, resume=True)
    full = train(load_config(None, [*BASE, "objective=wgan"]), tmp_path / "full")
    assert metrics(half) == metrics(full)


def test_orphan_temporary_files_are_removed_on_resume(tmp_path, capsys):
    run = train(load_config(None, SHORT), tmp_path / "run")
    orphans = [run / "checkpoints" / ".step-00000009.pt.0123456789abcdef.tmp",
               run / "samples" / ".step-00000009.png.fedcba9876543210.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a file")
    keep = run / "checkpoints" / "notes.tmp"  # not one of ours: left alone
    keep.write_bytes(b"mine")
    train(load_run_config(run, ["train.steps=9"]), run, resume=True)
    assert not any(orphan.exists() for orphan in orphans) and keep.exists()
    assert "removed" in capsys.readouterr().err


def test_resuming_to_fewer_steps_than_done_is_an_error(tmp_path):
    run = train(load_config(None, SHORT), tmp_path / "run")
    before = (run / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="'train.steps': got 3, but the run .* has done 6 steps; allowed: >= 6"):
        train(load_run_config(run, ["train.steps=3"]), run, resume=True)
    assert (run / "config.yaml").read_text() == before


def test_data_paths_are_resolved_and_recorded(tmp_path, monkeypatch):
    from equilibria.images import save_png

    images = tmp_path / "images"
    for i in range(8):
        save_png(images / f"{i}.png", (torch.rand(8, 8, 3) * 255).to(torch.uint8).numpy())
    monkeypatch.setenv("EQUILIBRIA_DATA", str(images))
    monkeypatch.chdir(tmp_path)
    run = train(load_config(None, [*SHORT, "data.name=folder", "data.image_size=8", "train.batch_size=4"]),
                tmp_path / "run")
    assert load_run_config(run).data.root == str(images.resolve())
    monkeypatch.delenv("EQUILIBRIA_DATA")  # a resume in another shell reads the same data
    train(load_run_config(run, ["train.steps=9"]), run, resume=True)
    assert steps_of(run)[-1] == 9


def test_a_full_disk_is_reported_with_its_cause_and_path(tmp_path, monkeypatch, capsys):
    real_save = torch.save

    def save_on_a_full_disk(obj, handle, *args, **kwargs):
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:  # torch reports the write failure as a RuntimeError over the OSError
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", save_on_a_full_disk)
    assert run_cli([*SHORT], tmp_path) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"equilibria: error: [Errno 28] could not write {tmp_path / 'checkpoints' / 'step-00000003.pt'}: "
                      "No space left on device")
    monkeypatch.setattr(torch, "save", real_save)
    assert not list((tmp_path / "checkpoints").iterdir())  # no half-written file left


def test_tensorboard_events_survive_a_kill_after_a_checkpoint(tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    process = start(tmp_path, ["log.tensorboard=true", "log.checkpoint_every=4"])
    deadline = time.monotonic() + 120
    while not steps_of(tmp_path) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.kill()
    process.communicate()
    step = steps_of(tmp_path)[0]
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert step in [event.step for event in events.Scalars("loss_adv")]


# -- SIGKILL at random moments ---------------------------------------------------------------------------
def test_killed_at_random_moments_and_resumed_the_run_is_unchanged(tmp_path):
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        from fault_injection import campaign
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    figures = campaign(tmp_path, kills=4, seed=1)
    assert figures["kills"] == 4 and figures["kills_while_writing"] >= 1 and figures["resumes"] >= 4
    assert figures["identical"]
