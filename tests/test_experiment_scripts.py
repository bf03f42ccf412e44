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


def test_icr_checkpoint_script_over_several_seeds_summarises_paired_differences(tmp_path):
    runs = [tmp_path / f"s{seed}" for seed in range(3)]
    for seed, run in enumerate(runs):
        subprocess.run([sys.executable, "-m", "equilibria.cli.main", "train", str(ROOT / "configs/ring8.yaml"),
                        "--run-dir", str(run), "--set", "train.steps=4", "--set", "train.update=simultaneous",
                        "--set", f"seed={seed}", "--set", "log.tensorboard=false", "--set", "log.progress=false"],
                       check=True, capture_output=True)
    done = subprocess.run([sys.executable, str(ROOT / "experiments/icr_checkpoint.py"), *map(str, runs), "--steps",
                           "4", "--every", "2", "--probe", "16", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = (tmp_path / "out" / "stability-summary.md").read_text()
    assert summary.startswith("# ICR Figure 4 over 3 runs (final values after 4 iterations)")
    rows = [line for line in summary.splitlines() if line.startswith(("| d_real", "| d_fake", "| weights"))]
    assert len(rows) == 3 and all(row.rstrip().endswith(("**holds** |", "**fails** |", "**undecided** |"))
                                  for row in rows)
    finals = [json.loads((tmp_path / "out" / f"s{seed}" / "stability.json").read_text()) for seed in range(3)]
    alone = [f["results"]["discriminator alone"][-1]["d_real"] for f in finals]
    jointly = [f["results"]["jointly"][-1]["d_real"] for f in finals]
    mean_difference = sum(a - j for a, j in zip(alone, jointly)) / 3
    assert f"| {mean_difference:+.3g} [" in rows[0]


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
    cases = [(["experiments/icr_checkpoint.py", str(tmp_path), "--steps", "0"],
              "--steps: got 0; allowed: an integer >= 1"),
             (["experiments/icr_checkpoint.py", str(tmp_path), str(tmp_path)], "--out: several runs need"),
             (["experiments/icr_checkpoint.py", str(tmp_path)], "is not a run directory"),
             (["experiments/vral_histograms.py", str(tmp_path), "--samples", "1"], "--samples: got 1"),
             (["experiments/vral_histograms.py", str(tmp_path)], "no runs */s0")]
    for args, message in cases:
        done = subprocess.run([sys.executable, str(ROOT / args[0]), *args[1:]], capture_output=True, text=True)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)
