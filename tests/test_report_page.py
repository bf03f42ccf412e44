"""``equilibria report``: the self-contained HTML page, checked as text and in a real headless browser."""

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from equilibria import report
from equilibria.cli.main import main
from equilibria.experiment import load_experiment, run_experiment, write_report
from equilibria.report_page import claims_table, write_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny experiment (two groups that differ in n_adv, two seeds, a baseline) and one run of its own."""
    root = tmp_path_factory.mktemp("page")
    config = root / "c.yaml"
    config.write_text("train: {steps: 4, batch_size: 16}\ngenerator: {width: 8}\ndiscriminator: {width: 8}\n"
                      "log: {every: 1, tensorboard: false, sample_every: 2}\n"
                      "eval: {every: 2, num_samples: 64, metrics: fid}\n")
    path = root / "e.yaml"
    path.write_text(f"seeds: [0, 1]\nmetrics: [eval/fid]\nbaseline: plain\ngroups: {{plain: {{config: {config}}}, "
                    f"twice: {{config: {config}, set: [train.n_adv=2]}}}}\n")
    experiment = load_experiment(path)
    out = root / "experiment"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EQUILIBRIA_CACHE", str(root / "cache"))  # the digits classifier of the FID
        groups = run_experiment(experiment, out)
        write_report(groups, experiment.metrics, out, "tiny", experiment.baselines,
                     command="equilibria experiment e.yaml")
        assert main(["train", str(config), "--run-dir", str(root / "single"), "--set", "log.progress=false"]) == 0
    return out, root / "single"


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory):
    return write_page(list(runs), tmp_path_factory.mktemp("out") / "report.html", title="a tiny comparison")


def test_the_page_holds_claims_configs_metrics_histograms_and_samples(page):
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<title>a tiny comparison</title>" in text
    assert "plain: 2 runs, twice: 2 runs, single: 1 run" in text
    claim = re.search(r"<tr><td>twice is better than plain on eval/fid \(best value\)</td>(.*?)</tr>", text)
    assert claim and re.search(r'class="(holds|fails|undecided)"', claim.group(1))
    assert "<code>equilibria experiment e.yaml</code>" in claim.group(1)
    assert re.search(r'<tr class="differs"><td>train.n_adv</td><td>1</td><td>2</td><td>1</td></tr>', text)
    assert '<tr class="same"><td>train.batch_size</td>' in text  # shared keys folded below
    for key in ("eval/fid", "loss_adv", "d_real", "grad_norm_fake"):
        assert f"<h3>{key} <small>" in text
    assert text.count("output histogram") == 3 and text.count('class="samples"') == 3 * 2  # steps 2 and 4


def test_every_image_is_embedded_and_decodes(page):
    text = page.read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', text)
    assert len(sources) > 10
    assert not re.search(r'(src|href)="(https?:|file:|/)', text)  # nothing outside the page
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))) as image:
            image.load()
            assert image.size[0] > 0


def fid_runs(root, curves):
    """Runs of hand-written FIDs: ``curves`` maps a group to one list of (step, FID) per seed."""
    groups = {}
    for name, seeds in curves.items():
        for seed, curve in enumerate(seeds):
            run = root / name / f"s{seed}"
            run.mkdir(parents=True)
            (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "seconds": 1.0, "eval/fid": v}) + "\n"
                                                       for s, v in curve))
            groups.setdefault(name, []).append(run)
    return groups


def test_the_claims_table_compares_by_ratio_where_the_experiment_says_so(tmp_path):
    groups = fid_runs(tmp_path, {name: [[(1, fid), (2, fid)] for fid in fids]
                                 for name, fids in {"method": [1.0, 4.0], "baseline": [4.0, 16.0]}.items()})
    info = {"metrics": ["eval/fid"], "baselines": {"method": ["baseline"]}, "command": "c"}
    (tmp_path / "experiment.json").write_text(json.dumps(info))  # as written before the ratio key
    assert "<td>-7.5 [" in claims_table(groups, tmp_path)  # 2.5 - 10
    (tmp_path / "experiment.json").write_text(json.dumps({**info, "ratio": ["eval/fid"]}))
    cells = re.search(r"\(best value\)</td><td>(.*?)</td><td>(.*?)</td>", claims_table(groups, tmp_path))
    assert cells.group(1).startswith("x0.25 [") and float(cells.group(2)) == pytest.approx(0.29, abs=0.005)


def test_the_claims_table_states_the_value_at_each_step_of_the_experiments_at_key(tmp_path):
    """At step 1 the method is at 10 and 20 where the baseline is at 40 and 80 (a quarter); both end at 5."""
    groups = fid_runs(tmp_path, {name: [[(1, fid), (2, 5.0 + seed)] for seed, fid in enumerate(early)]
                                 for name, early in {"method": [10.0, 20.0], "baseline": [40.0, 80.0]}.items()})
    info = {"metrics": ["eval/fid"], "baselines": {"method": ["baseline"]}, "command": "c", "ratio": ["eval/fid"],
            "at": [1]}
    (tmp_path / "experiment.json").write_text(json.dumps(info))
    table = claims_table(groups, tmp_path)
    assert re.search(r"\(best value\)</td><td>x1 ", table)  # the same best values
    assert re.search(r"on eval/fid \(at step 1\)</td><td>x0.25 \[", table)


def test_the_claims_table_compares_the_time_to_reach_the_experiments_reach_level(tmp_path):
    """FID 30 reached at step 1 by the method's runs, at step 2 by one baseline run and never by the other."""
    groups = fid_runs(tmp_path, {"method": [[(1, 20.0), (2, 10.0)], [(1, 25.0), (2, 10.0)]],
                                 "baseline": [[(1, 40.0), (2, 30.0)], [(1, 50.0), (2, 35.0)]]})
    info = {"metrics": ["eval/fid"], "baselines": {"method": ["baseline"]}, "command": "c", "reach": {"eval/fid": 30}}
    (tmp_path / "experiment.json").write_text(json.dumps(info))
    row = re.search(r"<tr><td>method reaches eval/fid &lt;= 30 in fewer steps than baseline \(ratio of the medians\)"
                    r"</td><td>(.*?)</td><td>(.*?)</td><td class=\"(\w+)\">\w+</td><td>(.*?)</td>",
                    claims_table(groups, tmp_path))
    assert row.group(1).startswith("x0 (the baseline's median never reached) [")  # medians 1 and inf (2, never)
    assert row.group(2).endswith("(Mann-Whitney)") and row.group(3) == "undecided"  # two seeds each
    assert row.group(4) == "2 of 2 and 1 of 2 seeds reached it"


def test_the_page_draws_a_metric_the_experiment_compares_by_ratio_on_a_log_axis(runs, tmp_path, monkeypatch):
    experiment = shutil.copytree(runs[0], tmp_path / "experiment")
    drawn, draw = {}, report.curves_figure

    def recording(groups, key, title=None, log=False):
        drawn[key] = log
        return draw(groups, key, title, log)

    monkeypatch.setattr(report, "curves_figure", recording)
    write_page([experiment], tmp_path / "plain.html")
    assert drawn["eval/fid"] is False and drawn["loss_adv"] is False
    info = json.loads((experiment / "experiment.json").read_text())
    (experiment / "experiment.json").write_text(json.dumps({**info, "ratio": ["eval/fid"]}))
    write_page([experiment], tmp_path / "ratio.html")
    assert drawn["eval/fid"] is True and drawn["loss_adv"] is False


def test_bad_paths_are_refused(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert "is neither a run directory (metrics.jsonl) nor an experiment directory" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_the_page_in_headless_chromium(page, tmp_path):
    profile = tmp_path / "profile"
    shot = tmp_path / "shot.png"
    done = subprocess.run([CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                           f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console  # the page runs no script and logs nothing
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"))
        assert int(pixels.max()) - int(pixels.min()) > 100 and len(np.unique(pixels)) > 20  # not blank
    # every image decodes in the browser: a copy of the page with a probe that writes the count in its title
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", "<script>window.addEventListener('load', () => { "
                     "const bad = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)); "
                     "document.title = 'decoded ' + (document.images.length - bad.length) + ' of ' + "
                     "document.images.length; });</script></body>"))
    dom = subprocess.run([CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    decoded, total = map(int, re.search(r"<title>decoded (\d+) of (\d+)</title>", dom).groups())
    assert decoded == total == page.read_text().count("<img ")
