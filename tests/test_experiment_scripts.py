"""The experiment scripts under experiments/, run on small runs."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_icr_checkpoint_script_on_a_small_run(tmp_path):
    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "equilibria.cli.main", "train", str(ROOT / "configs/ring8.yaml"),
                    "--run-dir", str(run), "--set", "train.steps=6", "--set", "train.update=simultaneous",
                    "--set", "log.checkpoint_every=3", "--set", "log.tensorboard=false", "--set", "log.progress=false"],
                   check=True, capture_output=True)
    done = subprocess.run([sys.executable, str(ROOT / "experiments/icr_checkpoint.py"), str(run), "--steps", "4",
                           "--every", "2", "--probe", "16"], check=True, capture_output=True, text=True)
    summary = json.loads((run / "stability.json").read_text())
    assert summary["checkpoint"] == "step-00000006.pt"
    assert set(summary["results"]) == {"discriminator alone", "jointly"}
    assert [r["step"] for r in summary["results"]["jointly"]] == [0, 2, 4]
    assert (run / "stability.png").stat().st_size > 0
    assert "| 4 | jointly |" in done.stdout


def test_vral_histograms_script_on_small_runs(tmp_path):
    for group in ("b-10to1", "b-2to1"):
        subprocess.run([sys.executable, "-m", "equilibria.cli.main", "train", str(ROOT / "configs/ring8.yaml"),
                        "--run-dir", str(tmp_path / group / "s0"), "--set", "train.steps=2",
                        "--set", "log.tensorboard=false", "--set", "log.progress=false"],
                       check=True, capture_output=True)
    done = subprocess.run([sys.executable, str(ROOT / "experiments/vral_histograms.py"), str(tmp_path),
                           "--samples", "50"], check=True, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("| b-")]
    assert [line.split(" | ")[0] for line in lines] == ["| b-2to1", "| b-10to1"]  # ratios in numeric order
    assert (tmp_path / "histograms-s0.png").stat().st_size > 0


def test_scripts_refuse_bad_options_with_a_clear_error(tmp_path):
    cases = [(["experiments/icr_checkpoint.py", str(tmp_path), "--steps", "0"], "--steps: got 0; allowed: an integer >= 1"),
             (["experiments/icr_checkpoint.py", str(tmp_path)], "is not a run directory"),
             (["experiments/vral_histograms.py", str(tmp_path), "--samples", "1"], "--samples: got 1"),
             (["experiments/vral_histograms.py", str(tmp_path)], "no runs */s0")]
    for args, message in cases:
        done = subprocess.run([sys.executable, str(ROOT / args[0]), *args[1:]], capture_output=True, text=True)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)
