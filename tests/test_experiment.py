"""Experiments and reports: file checks, resumable runs, tables from hand-written metrics."""

import json
from pathlib import Path

import pytest

from equilibria import report
from equilibria.experiment import load_experiment, run_experiment, write_report
from equilibria.training.config import ConfigError


def write_metrics(run_dir, records):
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_summary_and_table_from_hand_written_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_metrics(a, [{"step": 1, "seconds": 1.0, "fid": 50.0}, {"step": 2, "seconds": 2.0, "loss": 1.0},
                      {"step": 3, "seconds": 3.0, "fid": 30.0}, {"step": 4, "seconds": 4.0, "fid": 40.0}])
    write_metrics(b, [{"step": 1, "seconds": 2.0, "fid": 20.0}, {"step": 3, "seconds": 6.0, "fid": 25.0}])
    (row,) = report.summary({"g": [a, b]}, "fid")
    assert row["bests"] == [30.0, 20.0]
    assert row["best_mean"] == pytest.approx(25.0) and row["best_std"] == pytest.approx(7.0710678)  # stdev of 30, 20
    assert row["final_mean"] == pytest.approx(32.5) and row["seconds_mean"] == pytest.approx(5.0)
    assert "| g | 2 | 25.00 ± 7.07 | 30.00, 20.00 | 32.50 | 5 |" in report.markdown_table([row], "fid")
    steps, seconds, values = report.series(a, "fid")
    assert steps.tolist() == [1, 3, 4] and values.tolist() == [50.0, 30.0, 40.0]
    path = report.plot_curves({"g": [a, b]}, "fid", tmp_path / "c.png")
    assert path.stat().st_size > 1000


def test_summary_leaves_out_runs_and_groups_without_the_metric(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_metrics(a, [{"step": 1, "seconds": 1.0, "r": 4.0}, {"step": 2, "seconds": 2.0, "r": 3.0}])
    write_metrics(b, [{"step": 1, "seconds": 3.0, "fid": 20.0}])
    write_metrics(c, [{"step": 1, "seconds": 5.0, "fid": 20.0}])
    rows = report.summary({"method": [a, b], "baseline": [c]}, "r")
    assert [(row["group"], row["runs"], row["bests"]) for row in rows] == [("method", 1, [3.0])]
    assert rows[0]["seconds_mean"] == 2.0


@pytest.mark.parametrize("text, message", [
    ("seeds: [0]\nfoo: 1\ngroups: {a: {config: x.yaml}}", "unknown experiment key 'foo'"),
    ("seeds: []\ngroups: {a: {config: x.yaml}}", "'seeds': got \\[\\]"),
    ("seeds: [0]\ngroups: {}", "'groups': got \\{\\}"),
    ("groups: {a: {cfg: x.yaml}}", "experiment group 'a'"),
    ("groups: {a: {config: CONFIG, set: [train.steps=0]}}", "'train.steps': got 0"),
    ("set: train.steps=3\ngroups: {a: {config: CONFIG}}", "'set': got 'train.steps=3'"),
])
def test_bad_experiment_files(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text("train: {steps: 2}\n")
    path = tmp_path / "e.yaml"
    path.write_text(text.replace("CONFIG", str(tmp_path / "c.yaml")))
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


def test_run_experiment_trains_then_skips_finished_runs(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("train: {steps: 3, batch_size: 16}\ngenerator: {width: 8}\ndiscriminator: {width: 8}\n"
                      "log: {every: 1, tensorboard: false}\n")
    path = tmp_path / "e.yaml"
    path.write_text(f"seeds: [3]\nmetrics: [loss_adv]\ngroups: {{small: {{config: {config}}}}}\n")
    experiment = load_experiment(path)
    runs = run_experiment(experiment, tmp_path / "out")
    assert runs == {"small": [tmp_path / "out" / "small" / "s3"]}
    assert (runs["small"][0] / "checkpoints" / "step-00000003.pt").exists()
    assert "seed: 3" in (runs["small"][0] / "config.yaml").read_text()
    run_experiment(experiment, tmp_path / "out")
    assert "small/s3: done" in capsys.readouterr().out
    report_path = write_report(runs, ["loss_adv"], tmp_path / "out", "small")
    assert "| small | 1 |" in report_path.read_text() and (tmp_path / "out" / "curves-loss_adv.png").exists()
    assert "## loss_adv (a diagnostic: 'best' is the lowest value)" in report_path.read_text()


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_are_valid(path):
    assert load_experiment(path).groups
