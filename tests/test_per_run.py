"""Analyses over several runs: one record per run, read back when the settings match."""

import importlib.util
import json
import math
from argparse import Namespace
from pathlib import Path

from equilibria.analysis.per_run import analyse_runs, split_finite

ROOT = Path(__file__).resolve().parents[1]


def counting_analysis(calls):
    def analyse(run, directory):
        calls.append((run.name, directory))
        return {"value": len(run.name)}
    return analyse


def test_each_run_is_analysed_once_and_read_back_with_the_same_settings(tmp_path):
    runs = [tmp_path / "runs" / "s0", tmp_path / "runs" / "s10"]
    calls = []
    first = analyse_runs(Namespace(runs=runs, out=tmp_path / "out", steps=4, path=tmp_path), "record.json",
                         counting_analysis(calls))
    assert calls == [("s0", tmp_path / "out" / "s0"), ("s10", tmp_path / "out" / "s10")]
    assert [r["value"] for r in first] == [2, 3]
    on_disk = json.loads((tmp_path / "out" / "s10" / "record.json").read_text())
    assert on_disk == {"run": str(runs[1]), "settings": {"steps": 4, "path": str(tmp_path)}, "value": 3}
    again = analyse_runs(Namespace(runs=runs, out=tmp_path / "out", steps=4, path=tmp_path), "record.json",
                         counting_analysis(calls))
    assert len(calls) == 2 and again == first
    analyse_runs(Namespace(runs=runs, out=tmp_path / "out", steps=5, path=tmp_path), "record.json",
                 counting_analysis(calls))
    assert len(calls) == 4  # other settings: analysed again


def test_a_record_of_another_run_with_the_same_name_is_not_reused(tmp_path):
    calls = []
    for source in ("a", "b"):
        runs = [tmp_path / source / "s0", tmp_path / source / "s1"]
        analyse_runs(Namespace(runs=runs, out=tmp_path / "out"), "r.json", counting_analysis(calls))
    assert len(calls) == 4
    assert json.loads((tmp_path / "out" / "s0" / "r.json").read_text())["run"] == str(tmp_path / "b" / "s0")


def test_a_record_that_is_not_a_json_object_is_analysed_again_and_overwritten(tmp_path, capsys):
    runs = [tmp_path / "s0", tmp_path / "s1"]
    (tmp_path / "out" / "s0").mkdir(parents=True)
    (tmp_path / "out" / "s0" / "r.json").write_text('{"run": "torn')
    (tmp_path / "out" / "s1").mkdir()
    (tmp_path / "out" / "s1" / "r.json").write_text("[1, 2]")
    calls = []
    records = analyse_runs(Namespace(runs=runs, out=tmp_path / "out"), "r.json", counting_analysis(calls))
    assert [name for name, _ in calls] == ["s0", "s1"] and [r["value"] for r in records] == [2, 2]
    said = capsys.readouterr().out
    assert "s0/r.json: not valid JSON" in said and "s1/r.json: a JSON list, not an object; analysed again" in said
    assert json.loads((tmp_path / "out" / "s0" / "r.json").read_text())["value"] == 2


def test_a_single_run_writes_into_out_or_the_run_itself(tmp_path):
    calls = []
    analyse_runs(Namespace(runs=[tmp_path / "s0"], out=None), "r.json", counting_analysis(calls))
    analyse_runs(Namespace(runs=[tmp_path / "s1"], out=tmp_path / "out"), "r.json", counting_analysis(calls))
    assert calls == [("s0", tmp_path / "s0"), ("s1", tmp_path / "out")]
    assert (tmp_path / "s0" / "r.json").is_file() and (tmp_path / "out" / "r.json").is_file()


def test_split_finite_names_the_runs_that_diverged():
    records = [{"run": "s0", "x": [1.0, 2.0]}, {"run": "s1", "x": [1.0, math.nan]}, {"run": "s2", "x": [math.inf]}]
    kept, diverged = split_finite(records, lambda r: r["x"])
    assert kept == records[:1] and diverged == ["s1", "s2"]


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_counterattack_summary_leaves_out_a_diverged_run_and_says_so():
    script = load_script("icr_counterattack")

    def record(run, rises):
        return {"run": run, "curves": {name: [{"step": 0, "loss": 1.0}, {"step": 4, "loss": 1.0 + rise}]
                                       for name, rise in zip(("checkpoint", "over-trained alone",
                                                              "over-trained with CGD"), rises)}}
    records = [record("s0", (0.1, 0.5, 0.2)), record("s1", (0.3, math.nan, 0.2)), record("s2", (0.2, 0.7, 0.4)),
               record("s3", (0.6, 0.9, 0.3))]
    summary = script.summarise(records, steps=4)
    assert summary.startswith("# ICR Figure 8 over 3 runs")
    assert "Left out, a loss not finite (the counterattack diverged): s1." in summary
    row = next(line for line in summary.splitlines() if line.startswith("| over-trained alone |"))
    assert row.split(" | ")[3].startswith(f"{(0.5 + 0.7 + 0.9) / 3:.4g} [")  # the mean rise of the finite runs
    assert "| the over-trained discriminator's loss rises faster than the checkpoint's | +0.4 [" in summary
    too_few = script.summarise(records[:2], steps=4)
    assert "Too few runs with finite losses (1) for intervals and tests." in too_few
