"""Experiments and reports: file checks, resumable runs, tables from hand-written metrics."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from equilibria import report
from equilibria.experiment import archive, load_experiment, probe, progress, run_experiment, run_steps, write_report
from equilibria.launch import RunTask
from equilibria.report_page import find_runs
from equilibria.statistics import Comparison, compare_times
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
    assert row["finals"] == [40.0, 25.0]
    # the intervals of two seeds span their two values (BCa bootstrap of the mean)
    # the last-quarter change: a 40 - 30 (step 4 against step 3), b 25 - 20 (step 3 against step 1)
    assert row["drifts"] == [10.0, 5.0]
    # the mean over the last quarter (after 3/4 of the final step): a step 4 alone (40), b step 3 alone (25)
    assert row["last_quarters"] == [40.0, 25.0]
    table = report.markdown_table([row], "fid")
    assert "| g | 2 | 25 [20, 30] | 30, 20 | 32.5 [25, 40] | 32.5 [25, 40] | 5 | +7.5 [+5, +10] |" in table
    c = tmp_path / "c"  # evaluations at steps 2, 4, ..., 16: the last quarter is steps 14 and 16
    write_metrics(c, [{"step": 2 * i, "seconds": float(i), "fid": float(i * i)} for i in range(1, 9)])
    (row_c,) = report.summary({"c": [c]}, "fid")
    assert row_c["last_quarters"] == [(49.0 + 64.0) / 2] and row_c["finals"] == [64.0]
    steps, seconds, values = report.series(a, "fid")
    assert steps.tolist() == [1, 3, 4] and values.tolist() == [50.0, 30.0, 40.0]
    path = report.plot_curves({"g": [a, b]}, "fid", tmp_path / "c.png")
    assert path.stat().st_size > 1000


def test_curves_of_a_metric_compared_by_ratio_are_geometric_means_on_a_log_axis(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_metrics(a, [{"step": 1, "seconds": 1.0, "fid": 10.0}, {"step": 2, "seconds": 2.0, "fid": 1.0}])
    write_metrics(b, [{"step": 1, "seconds": 3.0, "fid": 1000.0}, {"step": 2, "seconds": 4.0, "fid": 100.0}])
    figure = report.curves_figure({"g": [a, b]}, "fid", log=True)
    steps_axis, minutes_axis = figure.axes
    assert steps_axis.get_yscale() == minutes_axis.get_yscale() == "log"
    (line,) = steps_axis.lines  # sqrt(10 * 1000) = 100, sqrt(1 * 100) = 10
    np.testing.assert_allclose(line.get_ydata(), [100.0, 10.0])
    band = steps_axis.collections[0].get_paths()[0].vertices[:, 1]  # the geometric std is 10 at both steps
    np.testing.assert_allclose(sorted(set(np.round(band, 6))), [1.0, 10.0, 100.0, 1000.0])
    (plain,) = report.curves_figure({"g": [a, b]}, "fid").axes[0].lines
    assert plain.get_ydata().tolist() == [505.0, 50.5]
    write_metrics(tmp_path / "c", [{"step": 1, "seconds": 1.0, "fid": 0.0}])
    with pytest.raises(ValueError, match="fid of group g: got 0.0; a log axis needs values > 0"):
        report.curves_figure({"g": [tmp_path / "c"]}, "fid", log=True)


def test_metrics_are_read_again_once_a_run_has_written_more(tmp_path):
    run = tmp_path / "run"
    write_metrics(run, [{"step": 1, "seconds": 1.0, "fid": 50.0}])
    assert report.load_metrics(run) == [{"step": 1, "seconds": 1.0, "fid": 50.0}]
    assert report.load_metrics(run)[0] is report.load_metrics(run)[0]  # parsed once
    with (run / "metrics.jsonl").open("a") as file:
        file.write(json.dumps({"step": 2, "seconds": 2.0, "fid": 40.0}) + "\n")
    assert [r["fid"] for r in report.load_metrics(run)] == [50.0, 40.0]
    assert report.series(run, "fid")[2].tolist() == [50.0, 40.0]


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
    ("groups: {a: {config: CONFIG, seeds: [1, 1]}}", "'groups.a.seeds': got \\[1, 1\\]; allowed: a non-empty list "
                                                     "of distinct integers >= 0"),
    ("groups: {a: {config: CONFIG, seeds: 3}}", "'groups.a.seeds': got 3"),
])
def test_bad_experiment_files(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text("train: {steps: 2}\n")
    path = tmp_path / "e.yaml"
    path.write_text(text.replace("CONFIG", str(tmp_path / "c.yaml")))
    with pytest.raises(ConfigError, match=message):
        load_experiment(path)


def tiny_experiment(tmp_path, steps, seeds, log="", groups=("small",)):
    """An experiment of tiny GANs on digits, ``steps`` long, each group the same config."""
    config = tmp_path / "c.yaml"
    config.write_text(f"train: {{steps: {steps}, batch_size: 16}}\ngenerator: {{width: 8}}\n"
                      f"discriminator: {{width: 8}}\nlog: {{every: 1, tensorboard: false{log}}}\n")
    path = tmp_path / "e.yaml"
    path.write_text(f"seeds: {seeds}\nmetrics: [loss_adv]\ngroups: {{"
                    + ", ".join(f"{g}: {{config: {config}}}" for g in groups) + "}\n")
    return load_experiment(path)


def test_run_experiment_trains_then_skips_finished_runs(tmp_path, capsys):
    experiment = tiny_experiment(tmp_path, 3, [3])
    runs = run_experiment(experiment, tmp_path / "out")
    assert runs == {"small": [tmp_path / "out" / "small" / "s3"]}
    assert (runs["small"][0] / "checkpoints" / "step-00000003.pt").exists()
    assert "seed: 3" in (runs["small"][0] / "config.yaml").read_text()
    run_experiment(experiment, tmp_path / "out")
    assert "small/s3: done" in capsys.readouterr().out
    report_path = write_report(runs, ["loss_adv"], tmp_path / "out", "small")
    assert "| small | 1 |" in report_path.read_text() and (tmp_path / "out" / "curves-loss_adv.png").exists()
    assert "## loss_adv (a diagnostic: 'best' is the lowest value)" in report_path.read_text()


def test_runs_trained_with_another_config_are_refused_before_anything_trains(tmp_path, monkeypatch, capsys):
    from equilibria.cli.main import main

    out = tmp_path / "out"
    run_experiment(tiny_experiment(tmp_path, 2, [0, 1], groups=("a", "b")), out)
    (out / "b" / "s1" / "config.yaml").write_text(  # as if trained before the file changed a key
        (out / "b" / "s1" / "config.yaml").read_text().replace("width: 8", "width: 6", 1))
    (out / "a" / "s0" / "config.yaml").write_text(  # moved to another machine: where, not what; and TensorBoard
        (out / "a" / "s0" / "config.yaml").read_text().replace("threads: 1", "threads: 4").replace(
            "device: cpu", "device: cuda").replace("tensorboard: false", "tensorboard: true"))
    trained = []
    monkeypatch.setattr("equilibria.experiment.run_locally",
                        lambda tasks, jobs, on_done: trained.extend(t.label for t in tasks))
    message = (r"1 run in .*out' trained with another config than the experiment's now: "
               r"b/s1 \(generator.width: ran 6, now 8\)")
    for call in (lambda: run_experiment(tiny_experiment(tmp_path, 3, [0, 1], groups=("a", "b")), out),
                 lambda: progress(tiny_experiment(tmp_path, 2, [0, 1], groups=("a", "b")), out)):
        with pytest.raises(ConfigError, match=message):
            call()
    assert trained == []
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "e.yaml", "--report-only", "--out", "out"]) == 2
    assert "generator.width: ran 6, now 8" in capsys.readouterr().err and not (out / "report.md").exists()
    (out / "b" / "s1" / "config.yaml").write_text(
        (out / "b" / "s1" / "config.yaml").read_text().replace("width: 6", "width: 8", 1))
    run_experiment(tiny_experiment(tmp_path, 3, [0, 1], groups=("a", "b")), out)  # more steps: resumed
    assert trained == ["a/s0", "b/s0", "a/s1", "b/s1"]
    with pytest.raises(ConfigError, match=r"4 runs .*a/s0 \(train.steps: ran 2, now 1\)"):  # fewer: not the file's
        run_experiment(tiny_experiment(tmp_path, 1, [0, 1], groups=("a", "b")), out)


def test_runs_are_trained_seed_by_seed(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("equilibria.experiment.run_locally",
                        lambda tasks, jobs, on_done: started.extend(t.label for t in tasks))
    runs = run_experiment(tiny_experiment(tmp_path, 2, [0, 1], groups=("a", "b")), tmp_path / "out")
    assert started == ["a/s0", "b/s0", "a/s1", "b/s1"]
    assert runs == {g: [tmp_path / "out" / g / "s0", tmp_path / "out" / g / "s1"] for g in ("a", "b")}


def test_a_group_with_more_seeds_trains_them_after_the_files_seeds(tmp_path, monkeypatch):
    from equilibria.cli.main import main

    (tmp_path / "c.yaml").write_text("train: {steps: 2, batch_size: 16}\ngenerator: {width: 8}\n"
                                     "discriminator: {width: 8}\nlog: {every: 1, tensorboard: false}\n")
    (tmp_path / "e.yaml").write_text("seeds: [1, 0]\nmetrics: [loss_adv]\ngroups: {a: {config: c.yaml}, "
                                     "b: {config: c.yaml, seeds: [0, 1, 3, 2]}}\n"
                                     "scales: {quick: {seeds: [5]}, short: {set: [train.steps=1]}}\n")
    started = []
    monkeypatch.setattr("equilibria.experiment.run_locally",
                        lambda tasks, jobs, on_done: started.extend(t.label for t in tasks))
    runs = run_experiment(load_experiment(tmp_path / "e.yaml"), tmp_path / "out")
    assert started == ["a/s1", "b/s1", "a/s0", "b/s0", "b/s2", "b/s3"]
    assert runs["a"] == [tmp_path / "out" / "a" / f"s{s}" for s in (1, 0)]
    assert runs["b"] == [tmp_path / "out" / "b" / f"s{s}" for s in (1, 0, 2, 3)]
    assert [g.seeds for g in load_experiment(tmp_path / "e.yaml", "quick").groups.values()] == [[5], [5]]
    assert [g.seeds for g in load_experiment(tmp_path / "e.yaml", "short").groups.values()] == [[1, 0], [0, 1, 3, 2]]
    monkeypatch.chdir(tmp_path)  # the report of every group's own seeds
    assert main(["experiment", "e.yaml", "--report-only"]) in (0, None)
    assert "0 of 6 runs have finished" in (tmp_path / "runs" / "e" / "report.md").read_text()


def test_groups_option_trains_only_the_named_groups_in_the_files_order(tmp_path, monkeypatch, capsys):
    from equilibria.cli.main import main

    (tmp_path / "c.yaml").write_text("train: {steps: 2, batch_size: 16}\ngenerator: {width: 8}\n"
                                     "discriminator: {width: 8}\nlog: {every: 1, tensorboard: false}\n")
    (tmp_path / "e.yaml").write_text("seeds: [0, 1]\nmetrics: [loss_adv]\ngroups: {a: {config: c.yaml}, "
                                     "b: {config: c.yaml}, c: {config: c.yaml}}\n")
    monkeypatch.chdir(tmp_path)
    started = []
    monkeypatch.setattr("equilibria.experiment.run_locally",
                        lambda tasks, jobs, on_done: started.extend(t.label for t in tasks))
    assert main(["experiment", "e.yaml", "--groups", "c,a"]) in (0, None)
    assert started == ["a/s0", "c/s0", "a/s1", "c/s1"]  # the file's order, seed by seed; b left alone
    assert main(["experiment", "e.yaml", "--groups", "a,x"]) == 2
    assert "groups: got x; allowed: a comma-separated list of a, b, c" in capsys.readouterr().err
    assert len(started) == 4


def test_an_archive_keeps_finished_runs_records_and_counts_them_done(tmp_path, capsys):
    experiment = tiny_experiment(tmp_path, 4, [0, 1], log=", checkpoint_every: 2")
    out = tmp_path / "out"
    runs = run_experiment(experiment, out)
    (runs["small"][1] / "checkpoints" / "step-00000004.pt").unlink()  # as if seed 1 had stopped at step 2
    text = write_report(runs, ["loss_adv"], out, "small").read_text()
    assert "1 of 2 runs have finished; the tables and curves leave out the others." in text
    assert "| small | 1 |" in text
    dest = tmp_path / "archive"
    assert archive(runs, out, dest) == [dest / "small" / "s0"]
    assert sorted(p.name for p in (dest / "small" / "s0").iterdir()) == ["config.yaml", "metrics.jsonl"]
    assert (dest / "report.md").is_file() and (dest / "curves-loss_adv.png").is_file()
    assert not (dest / "small" / "s1").exists()
    capsys.readouterr()
    run_experiment(experiment, dest)  # the archived run is done, the missing one trains
    assert "small/s0: done" in capsys.readouterr().out
    assert not (dest / "small" / "s0" / "checkpoints").exists()
    assert (dest / "small" / "s1" / "checkpoints" / "step-00000004.pt").exists()
    with pytest.raises(ConfigError, match="archive: got .*the experiment's own directory"):
        archive(runs, out, out)


def test_progress_counts_the_runs_and_estimates_the_time_left_from_each_groups_measured_runs(tmp_path):
    experiment = tiny_experiment(tmp_path, 1000, [0, 1, 2], groups=("fast", "slow", "unstarted"))
    out = tmp_path / "out"
    write_metrics(out / "fast" / "s0", [{"step": 500, "seconds": 4.0}, {"step": 500, "eval/fid": 9.0, "seconds": 4.0,
                                                                        "eval_seconds": 1.5},
                                        {"step": 1000, "seconds": 8.5}])  # 8.5 s training, 1.5 s evaluating
    write_metrics(out / "fast" / "s1", [{"step": 500, "seconds": 6.0}])
    (out / "fast" / "s1" / "checkpoints").mkdir()
    (out / "fast" / "s1" / "checkpoints" / "step-00000500.pt").touch()  # partial at step 500
    write_metrics(out / "slow" / "s0", [{"step": 250, "seconds": 100.0}])
    (out / "slow" / "s0" / "metrics.jsonl").open("a").write('{"step": 300, "sec')  # a torn last line
    text = progress(experiment, out, jobs=2)
    assert text.startswith(f"{out}: 1 of 9 runs done, 1 partial, 7 new\n")
    # fast: 16 s over 1500 steps, training and evaluation; left: 500 (s1) + 1000 (s2) steps
    fast_left = 1500 * 16.0 / 1500
    assert f"| fast | 1 | s1 at 500 | 1 | {16000 / 1500:.3g} s | {fast_left / 60:.0f} min |" in text
    # slow: s0 has metrics but no checkpoint, so it starts anew: 1000 + 1000 + 1000 steps at 0.4 s
    assert "| slow | 0 |  | 3 | 400 s | 20 min |" in text
    assert "| unstarted | 0 |  | 3 |  | ? |" in text
    assert text.rstrip().endswith(f"Left: about {(fast_left + 1200) / 60:.0f} min of training and evaluation, "
                                  f"{(fast_left + 1200) / 120:.0f} min at --jobs 2; not counted, no run measured "
                                  "yet: unstarted (--probe STEPS times them).")


def test_the_time_left_of_a_run_is_what_the_groups_finished_runs_took_over_the_same_steps(tmp_path):
    """A group that costs 1 s a step to step 2000 and 0.1 s after it (the lens, until it switches itself off):
    a run resuming at 2000 has the cheap steps left, not half the run at the mean rate."""
    experiment = tiny_experiment(tmp_path, 4000, [0, 1, 2], groups=("lens",))
    out = tmp_path / "out"
    write_metrics(out / "lens" / "s0", [{"step": 1000, "seconds": 1000.0}, {"step": 2000, "seconds": 2000.0},
                                        {"step": 3000, "seconds": 2100.0},
                                        {"step": 3000, "eval/fid": 9.0, "seconds": 2100.0, "eval_seconds": 50.0},
                                        {"step": 4000, "seconds": 2200.0}])
    write_metrics(out / "lens" / "s1", [{"step": 1000, "seconds": 1000.0}, {"step": 2000, "seconds": 2000.0}])
    (out / "lens" / "s1" / "checkpoints").mkdir()
    (out / "lens" / "s1" / "checkpoints" / "step-00002000.pt").touch()
    text = progress(experiment, out)
    # s1: 2200 - 2000 s of training and the evaluation at 3000; s2: the whole of s0, 2200 + 50 s
    # (at the mean rate, (2250 + 2000) / 6000 s a step: 1417 s for s1 and 2833 s for s2, 71 min)
    left = (250.0 + 2250.0) / 60
    assert f"| lens | 1 | s1 at 2000 | 1 | {1e6 * 4250 / 6000 / 1000:.3g} s | {left:.0f} min |" in text


def test_a_probe_times_training_per_step_and_one_evaluation_per_eval_every(tmp_path, monkeypatch):
    experiment = tiny_experiment(tmp_path, 1000, [4, 5])
    trained = []

    def train(config, run_dir):  # 20 steps in 3 s, an evaluation of 0.5 s (the run evaluates every 100 steps)
        trained.append((config.seed, config.train.steps, config.eval.every, config.threads))
        write_metrics(run_dir, [{"step": 20, "seconds": 3.0}, {"step": 20, "seconds": 3.0, "eval/fid": 1.0,
                                                                "eval_seconds": 0.5}])

    monkeypatch.setattr("equilibria.training.run.train", train)
    assert probe(experiment, "small", 20, threads=2, extra=["eval.every=100"]) == pytest.approx(3.0 / 20 + 0.5 / 100)
    assert trained == [(4, 20, 20, 2)]  # the first seed, evaluated once, at the end
    assert probe(experiment, "small", 20) == pytest.approx(3.0 / 20)  # no eval.every: no evaluation counted
    assert trained[-1] == (4, 20, 0, 1)
    with pytest.raises(ConfigError, match="probe: got 0 steps; allowed: an integer >= 1"):
        probe(experiment, "small", 0)


def test_status_with_a_probe_times_every_group_with_steps_left_here(tmp_path, monkeypatch, capsys):
    """A probe counts the groups without a measured run, and replaces the rate of the others' runs (which
    may have been measured on another machine), shown beside it."""
    from equilibria.cli.main import main

    tiny_experiment(tmp_path, 1000, [0, 1], groups=("measured", "unstarted", "finished"))
    write_metrics(tmp_path / "runs" / "e" / "measured" / "s0", [{"step": 1000, "seconds": 2.0}])
    for seed in (0, 1):
        write_metrics(tmp_path / "runs" / "e" / "finished" / f"s{seed}", [{"step": 1000, "seconds": 3.0}])
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "e.yaml", "--status", "--probe", "3"]) in (0, None)
    printed = capsys.readouterr()
    assert "unstarted: probing 3 steps" in printed.err and "measured: probing 3 steps" in printed.err
    assert "finished: probing" not in printed.err  # nothing left to time
    rows = {line.split(" | ")[0]: line for line in printed.out.splitlines() if line.startswith("| ")}
    assert re.fullmatch(r"\| unstarted \| 0 \|  \| 2 \| \S+ s \(probe\) \| \S+ min \|", rows["| unstarted"])
    assert re.fullmatch(r"\| measured \| 1 \|  \| 1 \| \S+ s \(probe; runs 2 s\) \| \S+ min \|", rows["| measured"])
    assert rows["| finished"] == "| finished | 2 |  | 0 | 3 s | 0 min |"
    assert "not counted" not in printed.out and not (tmp_path / "runs" / "e" / "unstarted").exists()
    for args in (["--probe", "3"], ["--status", "--probe", "0"]):
        assert main(["experiment", "e.yaml", *args]) == 2
        assert "--probe: got " in capsys.readouterr().err


def test_a_run_without_checkpoints_is_done_only_when_its_records_reach_its_steps(tmp_path):
    def state(records, torn=""):
        run_dir = tmp_path / str(len(list(tmp_path.iterdir())))
        write_metrics(run_dir, records)
        with (run_dir / "metrics.jsonl").open("a") as handle:
            handle.write(torn)
        return RunTask("r", run_dir, tmp_path / "c.yaml", [], steps=10).state()

    assert state([{"step": 5}, {"step": 10}]) == "done"
    assert state([{"step": 5}]) == "new"
    assert state([]) == "new"
    assert state([{"step": 10}], torn='{"step": 1') == "new"


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "experiments").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_experiments_are_valid_at_every_scale(path):
    """Every group's config with its overrides loads (load_experiment checks them) at the full and each named scale."""
    scales = yaml.safe_load(path.read_text()).get("scales", {})
    for scale in (None, *scales):
        assert load_experiment(path, scale).groups


def test_comparison_table_gives_differences_intervals_tests_and_verdicts(tmp_path):
    groups = {"method": [], "baseline": [], "worse": []}
    for seed in range(6):
        for name, fid in (("method", 10.0 + seed % 3), ("baseline", 20.0 + seed % 2), ("worse", 30.0 + seed % 2)):
            run = tmp_path / name / f"s{seed}"
            write_metrics(run, [{"step": 1, "seconds": 1.0, "eval/fid": fid + 5},  # at its plateau from step 2 on
                                {"step": 2, "seconds": 2.0, "eval/fid": fid},
                                {"step": 4, "seconds": 4.0, "eval/fid": fid}])
            groups[name].append(run)
    rows = report.summary(groups, "eval/fid")
    table = report.comparison_table(rows, {"method": ["baseline", "worse"], "worse": ["baseline"]}, "eval/fid",
                                    lower_is_better=True)
    lines = table.splitlines()
    assert lines[0].startswith("| group - baseline | best: difference [95% CI] | Welch p | verdict |")
    method = next(line for line in lines if line.startswith("| method - baseline |"))
    worse = next(line for line in lines if line.startswith("| worse - baseline |"))
    # best, final and the last quarter's mean (here the final value: one evaluation after step 3)
    assert method.startswith("| method - baseline | -9.5 [") and method.count("**holds**") == 3
    assert worse.startswith("| worse - baseline | +10 [") and worse.count("**fails**") == 3
    # a group with two baselines gets a row for each, in the order given
    assert [line.split(" |")[0] for line in lines[2:]] == ["| method - baseline", "| method - worse", "| worse - baseline"]
    assert lines[3].startswith("| method - worse | -19.5 [") and lines[3].count("**holds**") == 3
    # against a baseline of one seed: the difference alone, no interval and no test
    (single,) = report.summary({"single": groups["baseline"][:1]}, "eval/fid")
    line = report.comparison_table([*rows, single], {"method": ["single"]}, "eval/fid", True).splitlines()[2]
    assert line.startswith("| method - single | -9 | n/a | **undecided** | -9 | n/a |"), line


def ratio_groups(tmp_path, bests):
    """Finished runs of hand-written FIDs, each at its plateau (the same value at steps 1 and 2)."""
    groups = {}
    for name, values in bests.items():
        for seed, fid in enumerate(values):
            run = tmp_path / name / f"s{seed}"
            write_metrics(run, [{"step": step, "seconds": float(step), "eval/fid": fid} for step in (1, 2)])
            (run / "config.yaml").write_text("train: {steps: 2}\n")
            groups.setdefault(name, []).append(run)
    return groups


def test_a_comparison_by_ratio_is_of_geometric_means_with_welch_on_the_logs(tmp_path):
    groups = ratio_groups(tmp_path, {"method": [1.0, 4.0], "baseline": [4.0, 16.0]})
    rows = report.summary(groups, "eval/fid", log=True)
    assert rows[0]["bests"] == pytest.approx([0.0, math.log(4)])
    lines = report.comparison_table(rows, {"method": ["baseline"]}, "eval/fid", True, ratio=True).splitlines()
    assert lines[0].startswith("| group / baseline | best: ratio [95% CI] | Welch p | verdict | final: ratio ")
    # geometric means 2 and 8: x0.25. The logs are {0, L} and {L, 2L} (L = ln 4): t = -L / (L / sqrt 2) = -sqrt 2
    # on 2 degrees of freedom, whose two-sided p is 1 - sqrt(2) / 2 = 0.293 (the t(2) CDF: 1/2 + t / (2 sqrt(2 + t^2)))
    cells = lines[2].split(" | ")
    assert cells[0] == "| method / baseline" and cells[1].startswith("x0.25 [")
    assert float(cells[2]) == pytest.approx(1 - math.sqrt(2) / 2, abs=0.005) and cells[3] == "**undecided**"


def test_the_text_of_a_comparison_by_difference_and_by_ratio():
    by_difference = Comparison(difference=-9.0, low=-12.0, high=-6.5, p_value=0.01, verdict="holds")
    assert report.comparison_text(by_difference, ratio=False) == "-9 [-12, -6.5]"
    by_ratio = Comparison(math.log(0.25), math.log(0.2), math.log(0.4), 0.01, "holds")  # logs of the ratios
    assert report.comparison_text(by_ratio, ratio=True) == "x0.25 [0.2, 0.4]"
    assert report.comparison_text(Comparison(math.log(2.0), math.nan, math.nan, math.nan, "undecided"),
                                  ratio=True, digits=4) == "x2"  # against one seed: no interval
    never = Comparison(-math.inf, -math.inf, math.log(0.5), 0.03, "holds")  # times: the baseline's median is inf
    assert report.comparison_text(never, ratio=True) == "x0 (the baseline's median never reached) [0, 0.5]"
    assert report.comparison_text(Comparison(math.inf, math.log(2.0), math.inf, 0.03, "fails"),
                                  ratio=True) == "xinf (its median never reached) [2, inf]"


def test_one_failed_seed_decides_a_ratio_but_not_a_difference(tmp_path):
    """The reason for ``ratio``: a method 2.5 times lower on every seed, and one baseline seed that failed."""
    method = [2.0, 2.2, 1.8, 2.1, 1.9, 2.0, 2.3, 1.7]
    groups = ratio_groups(tmp_path, {"method": method, "baseline": [5.0, 5.5, 4.5, 5.2, 4.8, 5.1, 5.4, 250.0]})
    by_difference = report.comparison_table(report.summary(groups, "eval/fid"), {"method": ["baseline"]}, "eval/fid",
                                            True).splitlines()[2].split(" | ")
    by_ratio = report.comparison_table(report.summary(groups, "eval/fid", log=True), {"method": ["baseline"]},
                                       "eval/fid", True, ratio=True).splitlines()[2].split(" | ")
    assert by_difference[3] == "**undecided**" and float(by_difference[2]) > 0.3
    assert by_ratio[3] == "**holds**" and float(by_ratio[2]) < 0.05


def test_a_ratio_needs_positive_values(tmp_path):
    groups = ratio_groups(tmp_path, {"method": [1.0, 0.0]})
    with pytest.raises(ValueError, match="eval/fid of run method/s1: got 0.0; a comparison by ratio needs values > 0"):
        report.summary(groups, "eval/fid", log=True)


def test_the_ratio_key_of_an_experiment_file(tmp_path):
    (tmp_path / "c.yaml").write_text("train: {steps: 2}\n")
    path = tmp_path / "e.yaml"
    for bad in ("eval/fid", "[eval/kid]", "[loss_adv]"):
        path.write_text(f"metrics: [eval/fid, loss_adv]\nratio: {bad}\n"
                        f"groups: {{a: {{config: {tmp_path / 'c.yaml'}}}}}\n")
        with pytest.raises(ConfigError, match="'ratio': got .*; allowed: a list of the file's eval/ metrics "
                                              "\\(eval/fid\\)"):
            load_experiment(path)
    path.write_text(path.read_text().replace("ratio: [loss_adv]", "ratio: [eval/fid]"))
    assert load_experiment(path).ratio == ["eval/fid"]
    groups = ratio_groups(tmp_path / "runs", {"method": [1.0, 4.0], "baseline": [4.0, 16.0]})
    text = write_report(groups, ["eval/fid"], tmp_path / "out", "r", {"method": ["baseline"]},
                        ratio=["eval/fid"]).read_text()
    assert "eval/fid: compared by the ratio of the geometric means" in text and "| method / baseline | x0.25 [" in text
    assert "| method | 2 | 2.5 [" in text  # the table of values stays in the metric's own units
    assert json.loads((tmp_path / "out" / "experiment.json").read_text())["ratio"] == ["eval/fid"]


def test_a_verdict_waits_for_the_group_behind_to_reach_its_plateau(tmp_path):
    """RESULTS' rule: the verdict stands unless the group behind could close the gap in as many steps again."""
    def group(name, finals, falls):  # each seed's value falls by its ``falls`` over the last quarter (step 3 to 4)
        for seed, (final, fall) in enumerate(zip(finals, falls)):
            write_metrics(tmp_path / name / f"s{seed}", [{"step": 3, "seconds": 3.0, "eval/fid": final + fall},
                                                         {"step": 4, "seconds": 4.0, "eval/fid": final}])
        return sorted((tmp_path / name).iterdir())

    falling, still = [4.0, 3.5, 4.2, 3.8, 4.1], [-2.0, 1.0, 2.0, -1.0, 0.5]  # the second: both signs, a plateau
    groups = {"ahead": group("ahead", [10.0, 10.3, 9.8, 10.1, 9.9], falling),
              "flat": group("flat", [20.0, 20.5, 19.6, 20.2, 19.9], [0.0] * 5),
              "behind": group("behind", [30.0, 30.4, 29.7, 30.1, 29.8], falling),
              "noisy": group("noisy", [30.0, 30.4, 29.7, 30.1, 29.8], still)}
    rows = report.summary(groups, "eval/fid")
    lines = report.comparison_table(rows, {"ahead": ["flat"], "flat": ["behind"], "noisy": ["flat"]}, "eval/fid",
                                    lower_is_better=True).splitlines()
    ahead = next(line for line in lines if line.startswith("| ahead - flat |"))
    assert ahead.count("**holds** |") == 3  # the group ahead still improves: the gap only widens
    flat = next(line for line in lines if line.startswith("| flat - behind |"))
    assert flat.count("**undecided** (holds at this budget; behind still improving fast enough to close the gap)") == 3
    noisy = next(line for line in lines if line.startswith("| noisy - flat |"))
    assert noisy.count("**fails** |") == 3  # behind, but the interval of its changes holds 0: at its plateau


def test_best_values_wait_only_for_the_best_so_far_to_settle(tmp_path):
    """A group whose FID rose after an early best and is falling back is at its plateau on the best value
    (its best so far did not move in the last quarter) but not on the final value."""
    def group(name, values_per_seed):  # values at steps 1, 3 and 4
        for seed, values in enumerate(values_per_seed):
            write_metrics(tmp_path / name / f"s{seed}", [{"step": step, "seconds": float(step), "eval/fid": v}
                                                         for step, v in zip((1, 3, 4), values)])
        return sorted((tmp_path / name).iterdir())

    jitter = [0.0, 0.3, -0.2, 0.1, -0.1]
    groups = {"ahead": group("ahead", [(5 + j, 5 + j, 5 + j) for j in jitter]),
              "recovering": group("recovering", [(12 + j, 40 + j, 30 + 2 * j) for j in jitter]),  # best at step 1
              "new-best": group("new-best", [(12 + j, 11 + j, 8 + j) for j in jitter])}  # best falls 3 a quarter
    rows = report.summary(groups, "eval/fid")
    by_group = {r["group"]: r for r in rows}
    assert by_group["recovering"]["best_drifts"] == [0.0] * 5
    assert by_group["recovering"]["drifts"] == pytest.approx([-10 + j for j in jitter])
    assert by_group["new-best"]["best_drifts"] == pytest.approx([-3.0] * 5)
    lines = report.comparison_table(rows, {"ahead": ["recovering", "new-best"]}, "eval/fid", True).splitlines()
    recovering = next(line for line in lines if line.startswith("| ahead - recovering |")).split(" | ")
    assert recovering[3] == "**holds**"  # best: -7, and the best so far of recovering has settled
    # final: -25, and falling 10 a quarter closes it in 4 more quarters
    assert recovering[6] == "**undecided** (holds at this budget; recovering still improving fast enough to close the gap)"
    new_best = next(line for line in lines if line.startswith("| ahead - new-best |")).split(" | ")
    assert new_best[3].startswith("**undecided** (holds at this budget; new-best")  # best: -3, falling 3 a quarter


def test_scales_and_baseline_of_an_experiment_file(tmp_path):
    (tmp_path / "c.yaml").write_text("train: {steps: 200}\n")
    path = tmp_path / "e.yaml"
    path.write_text(f"seeds: [0, 1, 2, 3, 4]\nset: [log.every=10]\nbaseline: plain\n"
                    f"scales: {{quick: {{set: [train.steps=3], seeds: [0]}}, paper: {{set: [train.steps=9000]}}}}\n"
                    f"groups: {{plain: {{config: {tmp_path / 'c.yaml'}}}, "
                    f"other: {{config: {tmp_path / 'c.yaml'}, set: [train.steps=7]}}}}\n")
    full, quick, paper = load_experiment(path), load_experiment(path, "quick"), load_experiment(path, "paper")
    assert full.baselines == {"other": ["plain"]} and full.seeds == [0, 1, 2, 3, 4] and full.overrides == ["log.every=10"]
    assert quick.seeds == [0] and quick.overrides == ["log.every=10"]
    assert quick.groups["other"].overrides == ["train.steps=7", "train.steps=3"]  # the scale after the group's own
    assert paper.seeds == full.seeds and paper.groups["plain"].overrides == ["train.steps=9000"]
    with pytest.raises(ConfigError, match="scale: got 'huge' for .*; allowed: quick, paper"):
        load_experiment(path, "huge")
    path.write_text(path.read_text().replace("baseline: plain", "baseline: {plain: other}"))
    assert load_experiment(path).baselines == {"plain": ["other"]}
    path.write_text(path.read_text().replace("baseline: {plain: other}", "baseline: {plain: [other]}"))
    assert load_experiment(path).baselines == {"plain": ["other"]}
    for bad in ("nope", "{plain: [other, nope]}", "{plain: [plain]}", "{plain: []}", "{plain: [[other]]}"):
        path.write_text(re.sub("baseline: .*\n", f"baseline: {bad}\n", path.read_text()))
        with pytest.raises(ConfigError, match="'baseline': got .*; allowed: one of the groups \\(plain, other\\), "
                                              "or a mapping group -> another group or a list of other groups"):
            load_experiment(path)


def test_a_shipped_experiment_runs_quick_and_reports_against_its_baseline(tmp_path, capsys):
    from equilibria.cli.main import main

    out = tmp_path / "quick"
    assert main(["experiment", str(Path(__file__).parents[1] / "experiments" / "mixtures-ring8.yaml"), "--quick",
                 "--jobs", "2", "--out", str(out)]) in (0, None)
    text = (out / "report.md").read_text()
    assert text.startswith("# mixtures-ring8-quick")
    for key in ("eval/modes", "eval/high_quality"):
        assert f"## {key} (higher is better)" in text
    assert "| group - baseline | best: difference [95% CI] | Welch p | verdict |" in text
    assert "could not close the gap in as many steps again" in text  # the verdicts' rule, stated once
    assert all(f"| {group} - gan |" in text for group in ("advas", "acgd", "vral", "r3gan"))
    assert sorted(p.name for p in (out / "gan").iterdir()) == ["s0", "s1"]


def test_failure_table_counts_runs_worse_than_the_threshold_and_tests_the_shares(tmp_path):
    groups = {"lens": [], "nolens": [], "half": []}
    finals = {"lens": [30, 40, 35, 45, 38, 42, 33, 31, 39, 250],
              "nolens": [300, 280, 40, 310, 290, 35, 330, 305, 299, 320],
              "half": [300, 280, 40, 310, 290, 35, 33, 31, 39, 42]}
    for name, values in finals.items():
        for seed, value in enumerate(values):
            run = tmp_path / name / f"s{seed}"
            write_metrics(run, [{"step": 1, "seconds": 1.0, "eval/fid": 20.0}, {"step": 2, "seconds": 2.0,
                                                                               "eval/fid": float(value)}])
            groups[name].append(run)
    rows = report.summary(groups, "eval/fid")
    table = report.failure_table(rows, "eval/fid", 200, lower_is_better=True,
                                 baselines={"lens": ["nolens", "half"]}).splitlines()
    assert table[0] == "| group | failed (final eval/fid > 200) | share [95% CI] | baseline | Fisher p | verdict |"
    lens, lens_half = (line for line in table if line.startswith("| lens |"))  # a row for each baseline
    assert lens.startswith("| lens | 1 of 10 | 0.10 [0.00, 0.45] | nolens |") and lens.endswith("**holds** |")
    # 1 of 10 against 4 of 10: Fisher's two-sided p = 2 (C(10,5) + C(10,1) C(10,4)) / C(20,5) = 0.303 by hand
    assert lens_half == "| lens | 1 of 10 | 0.10 [0.00, 0.45] | half | 0.3 | **undecided** |"
    assert next(line for line in table if line.startswith("| nolens |")).startswith("| nolens | 8 of 10 | 0.80 [")


def test_a_bad_failure_key_is_refused(tmp_path):
    (tmp_path / "c.yaml").write_text("train: {steps: 2}\n")
    path = tmp_path / "e.yaml"
    path.write_text(f"failure: {{metric: eval/fid, above: 3}}\ngroups: {{a: {{config: {tmp_path / 'c.yaml'}}}}}\n")
    with pytest.raises(ConfigError, match="'failure': got .*; allowed: \\{metric: NAME, threshold: NUMBER\\}"):
        load_experiment(path)


def test_several_files_are_one_queue_and_each_gets_its_report(tmp_path, monkeypatch, capsys):
    from equilibria.cli.main import main

    (tmp_path / "c.yaml").write_text("train: {steps: 2, batch_size: 16}\ngenerator: {width: 8}\n"
                                     "discriminator: {width: 8}\nlog: {every: 1, tensorboard: false}\n")
    (tmp_path / "one.yaml").write_text("seeds: [0]\nmetrics: [loss_adv]\ngroups: {a: {config: c.yaml}, "
                                       "b: {config: c.yaml}}\n")
    (tmp_path / "two.yaml").write_text("seeds: [0, 1]\nmetrics: [loss_adv]\ngroups: {c: {config: c.yaml}}\n")
    monkeypatch.chdir(tmp_path)
    queued = []

    def run_locally(tasks, jobs, on_done):  # each run "trains" in turn
        queued.append(([(t.label, str(t.run_dir)) for t in tasks], jobs))
        for task in tasks:
            print(f"{task.label}: trained")
            on_done(task)

    monkeypatch.setattr("equilibria.experiment.run_locally", run_locally)
    assert main(["experiment", "one.yaml", "two.yaml", "--jobs", "2"]) in (0, None)
    assert queued == [([("one/a/s0", "runs/one/a/s0"), ("one/b/s0", "runs/one/b/s0"), ("two/c/s0", "runs/two/c/s0"),
                        ("two/c/s1", "runs/two/c/s1")], 2)]  # one call: the second file's runs fill a free job
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["one/a/s0: trained", "one/b/s0: trained", "report written to runs/one/report.md",
                       "two/c/s0: trained", "two/c/s1: trained", "report written to runs/two/report.md"]
    assert main(["experiment", "one.yaml", "two.yaml", "--status"]) in (0, None)
    printed = capsys.readouterr().out
    assert "runs/one: 0 of 2 runs done" in printed and "runs/two: 0 of 2 runs done" in printed
    for option in ("--out", "--archive"):
        assert main(["experiment", "one.yaml", "two.yaml", option, "x"]) == 2
        assert f"{option}: got 'x' with 2 experiment files; allowed: one file" in capsys.readouterr().err
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "one.yaml").write_text((tmp_path / "one.yaml").read_text().replace("c.yaml", "../c.yaml"))
    assert main(["experiment", "one.yaml", "sub/one.yaml", "--status"]) == 2
    assert "allowed: files of different names" in capsys.readouterr().err
    assert len(queued) == 1


def test_a_failed_run_does_not_stop_the_others_and_is_raised_at_the_end(tmp_path, monkeypatch):
    import equilibria.launch as launch

    class FakeJob:
        def __init__(self, task):
            self.task = task

        def __call__(self):
            if self.task.label in ("b", "d"):
                raise RuntimeError(f"{self.task.label} failed (exit 1)")
            return "finished"

    monkeypatch.setattr(launch, "RunJob", FakeJob)
    tasks = [RunTask(label, tmp_path / label, tmp_path / "c.yaml", [], 1) for label in "abcd"]
    done = []
    with pytest.raises(RuntimeError, match="^b failed \\(exit 1\\)\nd failed \\(exit 1\\)$"):
        launch.run_locally(tasks, 1, on_done=lambda task: done.append(task.label))
    assert done == ["a", "c"]


def test_sigterm_to_the_experiment_stops_its_runs_with_checkpoints_and_starts_no_more(tmp_path):
    import os
    import signal
    import threading
    import time

    from equilibria.training.run import RunStopped

    experiment = tiny_experiment(tmp_path, 3000, [0, 1, 2], log=", checkpoint_every: 1000")
    first, second = tmp_path / "out" / "small" / "s0", tmp_path / "out" / "small" / "s1"

    def signal_once_training():  # SIGTERM to this process (the experiment's), as pkill would send it
        deadline = time.monotonic() + 120
        while not all((run / "metrics.jsonl").exists() for run in (first, second)) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=signal_once_training, daemon=True)
    thread.start()
    with pytest.raises(RunStopped, match="stopped by SIGTERM: 2 runs stopped with a checkpoint, 1 not started") as info:
        run_experiment(experiment, tmp_path / "out", jobs=2, extra=["log.progress=false"])
    thread.join()
    assert info.value.exit_code == 143
    tasks = {run.name: RunTask(run.name, run, experiment.groups["small"].config, [], 3000)
             for run in sorted((tmp_path / "out" / "small").iterdir())}
    assert [task.state() for task in tasks.values()] == ["partial", "partial"]  # s2 was never started
    assert "stopped by SIGTERM after step" in (first / "stdout.log").read_text()
    stopped_at = json.loads((first / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    assert 0 < stopped_at < 3000


def test_the_value_at_a_step_is_the_last_one_logged_at_or_before_it():
    records = [{"step": 2, "eval/fid": 40.0}, {"step": 3, "loss_adv": 1.0}, {"step": 4, "eval/fid": 30.0}]
    assert report.value_at(records, "eval/fid", 3) == 40.0  # step 3 logged no FID: the one of step 2
    assert report.value_at(records, "eval/fid", 4) == 30.0
    assert report.value_at(records, "eval/fid", 100) == 30.0  # a run that ended earlier: its final value
    with pytest.raises(ValueError, match="at: got step 1, before fast/s0 first logged eval/fid"):
        report.value_at(records, "eval/fid", 1, "fast/s0")


def test_the_at_key_compares_how_fast_groups_get_there(tmp_path):
    """Two groups that end at the same FID, one halfway there by step 2: the values at step 3 (those of
    step 2) are compared without waiting for a plateau, the final ones are equal."""
    curves = {"fast": [(40.0, 10.0), (42.0, 11.0), (38.0, 9.0)], "slow": [(80.0, 10.0), (84.0, 11.0), (76.0, 9.0)]}
    groups = {}
    for name, runs in curves.items():
        for seed, (early, final) in enumerate(runs):
            run = tmp_path / name / f"s{seed}"
            write_metrics(run, [{"step": 2, "seconds": 2.0, "eval/fid": early},
                                {"step": 6, "seconds": 6.0, "eval/fid": final}])
            (run / "config.yaml").write_text("train: {steps: 6}\n")
            groups.setdefault(name, []).append(run)
    text = write_report(groups, ["eval/fid"], tmp_path / "out", "speed", {"fast": ["slow"]}, ratio=["eval/fid"],
                        at=[3]).read_text()
    header = next(line for line in text.splitlines() if line.startswith("| group / baseline |"))
    assert header.endswith("| at step 3: ratio [95% CI] | Welch p | verdict |")
    cells = next(line for line in text.splitlines() if line.startswith("| fast / slow |")).split(" | ")
    assert cells[1].startswith("x1 ") and cells[3] == "**undecided**"  # best: the same final FIDs
    ratio, low, high = map(float, re.fullmatch(r"x(\S+) \[(\S+), (\S+)\]", cells[10]).groups())
    assert ratio == 0.5 and low < 0.5 < high < 1 and cells[12] == "**holds** |"  # geometric means 40 and 80
    assert "| fast | 3 | 10 [" in text and "| 40 [" in text  # values in FID: means 10 and 40 (at step 3)
    assert json.loads((tmp_path / "out" / "experiment.json").read_text())["at"] == [3]


def test_the_reach_key_compares_the_time_each_group_took_to_reach_a_level(tmp_path):
    """FID 30 or lower: the fast group's three runs at step 2 (2 s), the slow group's at step 6 (6 s) and
    never (its third run ends at 31); medians 2 against 6, the never-reaching run above the others."""
    curves = {"fast": [[50.0, 29.0, 28.0], [60.0, 30.0, 25.0], [55.0, 20.0, 20.0]],
              "slow": [[80.0, 50.0, 29.0], [84.0, 40.0, 30.0], [76.0, 45.0, 31.0]]}
    groups = {}
    for name, runs in curves.items():
        for seed, values in enumerate(runs):
            run = tmp_path / name / f"s{seed}"
            write_metrics(run, [{"step": step, "seconds": float(step), "eval/fid": v} for step, v in zip((1, 2, 6), values)])
            (run / "config.yaml").write_text("train: {steps: 6}\n")
            groups.setdefault(name, []).append(run)
    text = write_report(groups, ["eval/fid"], tmp_path / "out", "reach", {"fast": ["slow"]},
                        reach={"eval/fid": 30.0}).read_text()
    assert "### Time to reach eval/fid <= 30" in text
    assert "| fast | 3 of 3 | 2 | 2 |" in text and "| slow | 2 of 3 | 6 | 6 |" in text
    cells = next(line for line in text.splitlines() if line.startswith("| fast / slow |")).split(" | ")
    assert cells[1].startswith("x0.333 [") and cells[4].startswith("x0.333 [")
    assert float(cells[2]) == pytest.approx(compare_times([2, 2, 2], [6, 6, math.inf]).p_value, abs=5e-4)
    assert json.loads((tmp_path / "out" / "experiment.json").read_text())["reach"] == {"eval/fid": 30.0}


@pytest.mark.parametrize("bad", ["30", "{eval/fid: true}", "{eval/kid: 30}", "{loss_adv: 1}", "{eval/fid: [30]}"])
def test_a_bad_reach_key_is_refused(tmp_path, bad):
    (tmp_path / "c.yaml").write_text("train: {steps: 2}\n")
    path = tmp_path / "e.yaml"
    path.write_text(f"metrics: [eval/fid, loss_adv]\nreach: {bad}\ngroups: {{a: {{config: {tmp_path / 'c.yaml'}}}}}\n")
    with pytest.raises(ConfigError, match=r"experiment key 'reach': got .*; allowed: a mapping from metrics of "
                                          r"'metrics' that are evaluated \(eval/fid\) to the level"):
        load_experiment(path)
    path.write_text(path.read_text().replace(f"reach: {bad}", "reach: {eval/fid: 30}"))
    assert load_experiment(path).reach == {"eval/fid": 30.0}


@pytest.mark.parametrize("bad", ["5000", "[0]", "[true]", "[100, 100]", "[1.5]"])
def test_a_bad_at_key_is_refused(tmp_path, bad):
    (tmp_path / "c.yaml").write_text("train: {steps: 2}\n")
    path = tmp_path / "e.yaml"
    path.write_text(f"at: {bad}\ngroups: {{a: {{config: {tmp_path / 'c.yaml'}}}}}\n")
    with pytest.raises(ConfigError, match="experiment key 'at': got .*; allowed: a list of distinct steps >= 1"):
        load_experiment(path)
    path.write_text(path.read_text().replace(f"at: {bad}", "at: [4000, 200]"))
    assert load_experiment(path).at == [200, 4000]


def test_runs_started_with_fewer_steps_than_the_file_now_asks_are_not_reported_or_archived_as_done(tmp_path):
    """A file's train.steps raised after its runs finished (or a scale that continues them): until they
    are trained further, the report and the archive leave them out."""
    experiment = tiny_experiment(tmp_path, 2, [0])
    out = tmp_path / "out"
    runs = run_experiment(experiment, out)
    (tmp_path / "longer").mkdir()
    longer = tiny_experiment(tmp_path / "longer", 4, [0])
    steps = run_steps(longer, out)
    assert steps == {out / "small" / "s0": 4}
    text = write_report(runs, ["loss_adv"], out, "small", steps=steps).read_text()
    assert "0 of 1 runs have finished" in text
    assert archive(runs, out, tmp_path / "archive", steps) == []
    assert (tmp_path / "archive" / "report.md").read_text() == text  # the report without the run
    assert find_runs([out]) == ({}, [out], 1)  # the HTML page reads the steps from experiment.json
    assert "0 of 1 runs" not in write_report(runs, ["loss_adv"], out, "small", steps=run_steps(experiment, out)).read_text()
    assert find_runs([out]) == ({"small": [out / "small" / "s0"]}, [out], 0)
