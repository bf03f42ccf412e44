"""Whole runs: the run directory, exact resume, checkpoints, determinism."""

import json
from pathlib import Path

import pytest
import torch

from equilibria.files import save_atomically
from equilibria.training import checkpoint
from equilibria.training.config import ConfigError, load_config
from equilibria.training.run import load_run_config, train

SMALL = ["train.steps=12", "train.batch_size=32", "train.n_adv=2", "train.ema=0.9", "objective=wgan",
         "penalties.gradient_penalty=10", "generator.width=8", "discriminator.width=8", "log.every=2",
         "log.sample_every=6", "log.checkpoint_every=6", "log.progress=false", "log.tensorboard=false",
         "log.num_samples=4", "threads=1"]


def metrics(run_dir):
    records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    for record in records:  # the clock's readings differ between any two runs
        del record["seconds"]
        record.pop("eval_seconds", None)
    return records


def final_weights(run_dir):
    state = checkpoint.load(checkpoint.checkpoints(Path(run_dir) / "checkpoints")[-1]).trainer
    return state["generator"], state["ema"], state["discriminator"]


WITH_METHODS = ["lens.enabled=true", "lens.width=4", "lens.blocks=1", "lens.anneal_steps=8", "vral.enabled=true",
                "vral.mean_subtraction=true"]


@pytest.mark.parametrize("extra", [[], WITH_METHODS, ["train.precision=fp16"]], ids=["plain", "lens+vral", "fp16"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, extra):
    full = train(load_config(None, SMALL + extra), tmp_path / "full")
    half = train(load_config(None, SMALL + extra + ["train.steps=6"]), tmp_path / "half")
    with (half / "metrics.jsonl").open("a") as handle:  # a line a crash left after the checkpoint
        handle.write(json.dumps({"step": 7, "seconds": 0.0, "loss_adv": 123.0}) + "\n")
    train(load_run_config(half, ["train.steps=12"]), half, resume=True)

    assert metrics(half) == metrics(full)
    assert [r["step"] for r in metrics(full)] == [2, 4, 6, 8, 10, 12]
    if extra == WITH_METHODS:
        assert {"lens/reconstruction", "adv/meta_real", "meta/loss_fake"} <= set(metrics(full)[-1])
        assert (full / "samples" / "lensed-step-00000012.png").exists()
    if extra == ["train.precision=fp16"]:  # the loss scales are restored, or the first overflow would recur
        assert metrics(full)[-1]["fp16/overflows_adv"] >= 1
    for a, b in zip(final_weights(full), final_weights(half)):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_same_seed_same_run_and_other_seed_differs(tmp_path):
    a = train(load_config(None, SMALL + ["train.steps=4"]), tmp_path / "a")
    b = train(load_config(None, SMALL + ["train.steps=4"]), tmp_path / "b")
    c = train(load_config(None, SMALL + ["train.steps=4", "seed=1"]), tmp_path / "c")
    assert metrics(a) == metrics(b)
    assert metrics(a) != metrics(c)


def test_run_directory_contents(tmp_path):
    run = train(load_config(None, SMALL + ["log.tensorboard=true", "log.checkpoint_every=2", "log.keep_checkpoints=2"]),
                tmp_path / "run")
    assert load_config(run / "config.yaml") == load_config(None, SMALL + [
        "log.tensorboard=true", "log.checkpoint_every=2", "log.keep_checkpoints=2"])
    assert [p.name for p in checkpoint.checkpoints(run / "checkpoints")] == ["step-00000010.pt", "step-00000012.pt"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-00000006.png", "step-00000012.png"]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    record = metrics(run)[-1]
    for key in ("loss_adv", "loss_gen", "adv/objective", "adv/gradient_penalty", "grad_norm_adv", "grad_norm_gen",
                "d_real", "d_fake"):
        assert isinstance(record[key], float), key
    assert not list(run.rglob("*.tmp"))


def test_two_dimensional_run_writes_scatter_plots(tmp_path):
    run = train(load_config(None, ["data.name=ring", "data.num_samples=2000", "generator.arch=mlp",
                                   "train.steps=4", "log.sample_every=2", "log.progress=false",
                                   "log.tensorboard=false"]), tmp_path / "ring")
    assert (run / "samples" / "step-00000004.png").stat().st_size > 1000


def test_image_sample_grids_are_written_at_a_readable_size(tmp_path):
    from PIL import Image

    run = train(load_config(None, SMALL + ["train.steps=2", "log.sample_every=2"]), tmp_path / "run")
    with Image.open(run / "samples" / "step-00000002.png") as image:  # 8x8 digits, 82 px without enlarging
        assert max(image.size) >= 512


def test_refuses_to_overwrite_a_run_and_to_change_the_recipe_on_resume(tmp_path):
    run = train(load_config(None, SMALL + ["train.steps=2"]), tmp_path / "run")
    with pytest.raises(ConfigError, match="already has checkpoints"):
        train(load_config(None, SMALL), run)
    with pytest.raises(ConfigError, match="'optim.generator.lr' cannot change on resume"):
        load_run_config(run, ["optim.generator.lr=0.1"])
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        train(load_config(None, SMALL), tmp_path / "empty", resume=True)


def test_atomic_save_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_atomically({"x": torch.ones(2)}, path)

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_atomically({"x": torch.zeros(2)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    monkeypatch.undo()
    torch.testing.assert_close(torch.load(path, weights_only=True)["x"], torch.ones(2))


class Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_checkpoints_load_without_running_code(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"trainer": Payload()}, path)
    with pytest.raises(checkpoint.CheckpointError, match="holds Python objects that only running their code could "
                                                         "rebuild; refused"):
        checkpoint.load(path)
    assert "code ran" not in capsys.readouterr().out


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = checkpoint.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    checkpoint.set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    torch.testing.assert_close(expected[0], again[0])
    assert (expected[1] == again[1]).all() and expected[2] == again[2]


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    load_config(path)


def test_evaluation_during_training_leaves_training_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUILIBRIA_CACHE", str(tmp_path / "cache"))
    plain = train(load_config(None, SMALL), tmp_path / "plain")
    evaluated = train(load_config(None, SMALL + ["eval.every=6", "eval.num_samples=64", "eval.metrics=fid,is",
                                                 "eval.kid_subset_size=32"]), tmp_path / "evaluated")
    records = metrics(evaluated)
    scores = [r for r in records if "eval/fid" in r]
    assert [r["step"] for r in scores] == [6, 12]
    assert all(r["eval/fid"] > 0 and 1 <= r["eval/is"] <= 10 for r in scores)
    assert [r for r in records if "eval/fid" not in r] == metrics(plain)
    clock = [json.loads(line) for line in (evaluated / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in clock if "eval_seconds" in r]  # each evaluation's own time, beside its scores
    assert [r["step"] for r in timed] == [6, 12] and all(r["eval_seconds"] > 0 and "eval/fid" in r for r in timed)


def test_progress_is_a_line_per_logging_step_when_the_output_is_not_a_terminal(tmp_path, capsys):
    train(load_config(None, SMALL + ["train.steps=4", "log.progress=true"]), tmp_path / "run")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("train: step")]
    assert [line.split(" (")[0] for line in lines] == ["train: step 2/4", "train: step 4/4"]  # log.every=2
    assert all("it/s, elapsed " in line and ", left " in line and "loss_adv " in line for line in lines)
    assert "\r" not in err


def test_progress_is_a_bar_on_a_terminal():
    import io

    from tqdm import tqdm

    from equilibria.training.log import LineProgress, progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(progress(10, 0, True, Terminal()), tqdm)
    assert isinstance(progress(10, 0, True, io.StringIO()), LineProgress)
    assert progress(10, 0, False, io.StringIO()).disable


def test_linear_learning_rate_decay_reaches_zero_and_resumes_on_schedule(tmp_path):
    from equilibria.core.optimizers import OptimizerConfig, scheduled_lr

    assert scheduled_lr(OptimizerConfig(lr=2e-4, decay="linear"), 0, 4) == 2e-4
    assert scheduled_lr(OptimizerConfig(lr=2e-4, decay="linear"), 3, 4) == pytest.approx(0.5e-4)
    assert scheduled_lr(OptimizerConfig(lr=2e-4), 3, 4) == 2e-4
    decayed = SMALL + ["train.steps=4", "log.every=1", "optim.generator.decay=linear", "optim.generator.lr=1e-3"]
    run = train(load_config(None, decayed), tmp_path / "run")
    lrs = [r["lr/generator"] for r in metrics(run) if "lr/generator" in r]
    assert lrs == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3])  # the rate of each iteration (1 - t / 4)
    assert all("lr/adversary" not in r for r in metrics(run))  # its decay stays constant
    # a resumed run continues the schedule of its (new) train.steps from its step
    first = train(load_config(None, [*decayed, "train.steps=2"]), tmp_path / "resumed")
    train(load_config(None, decayed), first, resume=True)
    assert [r["lr/generator"] for r in metrics(first) if "lr/generator" in r] == pytest.approx(
        [1e-3, 0.5e-3, 0.5e-3, 0.25e-3])
    with pytest.raises(ConfigError, match=r"'optim.generator.decay': got 'linear' with cgd.enabled=true"):
        load_config(None, ["cgd.enabled=true", "objective=wgan", "optim.generator.decay=linear"])
