"""The experiment scripts under experiments/, run on small runs."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch

from equilibria.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]


def simultaneous_ring_runs(tmp_path, seeds):
    """Runs of 4 simultaneous steps on the ring, one per seed, in tmp_path/s<seed>."""
    runs = [tmp_path / f"s{seed}" for seed in range(seeds)]
    for seed, run in enumerate(runs):
        subprocess.run([sys.executable, "-m", "equilibria.cli.main", "train", str(ROOT / "configs/ring8.yaml"),
                        "--run-dir", str(run), "--set", "train.steps=4", "--set", "train.update=simultaneous",
                        "--set", f"seed={seed}", "--set", "log.tensorboard=false", "--set", "log.progress=false"],
                       check=True, capture_output=True)
    return runs


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
    runs = simultaneous_ring_runs(tmp_path, seeds=3)
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


def test_icr_counterattack_script_over_several_seeds(tmp_path):
    runs = simultaneous_ring_runs(tmp_path, seeds=3)
    done = subprocess.run([sys.executable, str(ROOT / "experiments/icr_counterattack.py"), *map(str, runs),
                           "--overtrain", "3", "--steps", "4", "--every", "2", "--probe", "16",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    results = [json.loads((tmp_path / "out" / f"s{seed}" / "counterattack.json").read_text()) for seed in range(3)]
    curves = [r["curves"] for r in results]
    assert set(curves[0]) == {"checkpoint", "over-trained alone", "over-trained with CGD"}
    assert all([row["step"] for row in c] == [0, 2, 4] for r in curves for c in r.values())
    # the three discriminators differ, and the counterattacks start from the same generator
    starts = [curves[0][name][0]["loss"] for name in curves[0]]
    assert len(set(starts)) == 3
    summary = (tmp_path / "out" / "counterattack-summary.md").read_text()
    rise = [c["checkpoint"][-1]["loss"] - c["checkpoint"][0]["loss"] for c in curves]
    assert f"{sum(rise) / 3:.4g} [" in next(line for line in summary.splitlines() if line.startswith("| checkpoint |"))
    verdicts = [line for line in summary.splitlines() if line.endswith("** |")]
    assert len(verdicts) == 3 and all(line.endswith(("**holds** |", "**fails** |", "**undecided** |"))
                                      for line in verdicts)
    assert (tmp_path / "out" / "counterattack.png").stat().st_size > 0
    (tmp_path / "out" / "s1" / "counterattack.json").unlink()  # as if stopped in its second run
    again = subprocess.run([sys.executable, str(ROOT / "experiments/icr_counterattack.py"), *map(str, runs),
                            "--overtrain", "3", "--steps", "4", "--every", "2", "--probe", "16",
                            "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("not analysed again") == 2 and again.stdout.count("from step-") == 1
    assert (tmp_path / "out" / "counterattack-summary.md").read_text() == summary


def test_icr_fresh_discriminator_script_on_small_digit_runs(tmp_path):
    runs = [tmp_path / f"s{seed}" for seed in range(2)]
    for seed, run in enumerate(runs):
        subprocess.run([sys.executable, "-m", "equilibria.cli.main", "train", str(ROOT / "configs/digits.yaml"),
                        "--run-dir", str(run), "--set", "train.steps=6", "--set", f"seed={seed}",
                        "--set", "generator.width=8", "--set", "discriminator.width=8",
                        "--set", "log.checkpoint_every=2", "--set", "eval.every=2", "--set", "eval.num_samples=64",
                        "--set", "eval.metrics=fid", "--set", "log.tensorboard=false", "--set", "log.progress=false"],
                       check=True, capture_output=True)
    done = subprocess.run([sys.executable, str(ROOT / "experiments/icr_fresh_discriminator.py"), *map(str, runs),
                           "--pretrain", "20", "--steps", "6", "--every", "3", "--probe", "50",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads((tmp_path / "out" / f"s{seed}" / "fresh-discriminator.json").read_text()) for seed in (0, 1)]
    generators = records[0]["generators"]
    assert [g["step"] for g in generators] == [2, 4, 6]
    fids = {r["step"]: r["eval/fid"] for r in map(json.loads, (runs[0] / "metrics.jsonl").read_text().splitlines())
            if "eval/fid" in r}
    assert [g["quality"] for g in generators] == [fids[2], fids[4], fids[6]]
    assert all([r["step"] for r in g["curve"]] == [0, 3, 6] for g in generators)
    summary = (tmp_path / "out" / "fresh-discriminator-summary.md").read_text()
    assert "over 2 runs (6 generators)" in summary and summary.rstrip().endswith(("**holds** |", "**fails** |",
                                                                                  "**undecided** |"))
    assert (tmp_path / "out" / "fresh-discriminator.png").stat().st_size > 0
    missing = subprocess.run([sys.executable, str(ROOT / "experiments/icr_fresh_discriminator.py"), str(runs[0]),
                              "--quality", "eval/is", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert missing.returncode != 0 and "has no eval/is at the checkpoint steps [2, 4, 6]" in missing.stderr
    short = tmp_path / "short"
    subprocess.run([sys.executable, "-m", "equilibria.cli.main", "train", str(ROOT / "configs/digits.yaml"),
                    "--run-dir", str(short), "--set", "train.steps=2", "--set", "generator.width=8",
                    "--set", "discriminator.width=8", "--set", "log.tensorboard=false", "--set", "log.progress=false"],
                   check=True, capture_output=True)
    few = subprocess.run([sys.executable, str(ROOT / "experiments/icr_fresh_discriminator.py"), str(short),
                          "--out", str(tmp_path / "y")], capture_output=True, text=True)
    assert few.returncode != 0 and "1 kept checkpoint(s); allowed: at least 3" in few.stderr


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
             (["experiments/icr_counterattack.py", str(tmp_path), "--overtrain", "0"], "--overtrain: got 0"),
             (["experiments/icr_counterattack.py", str(tmp_path), "--cgd-lr", "-1"], "--cgd-lr: got -1.0"),
             (["experiments/icr_counterattack.py", str(tmp_path), "--with-adam", "0"], "--with-adam: got 0.0"),
             (["experiments/icr_counterattack.py", str(tmp_path), "--with-adam", "1e-3", "--cgd-lr", "0.1"],
              "--cgd-lr: CGD's step size; with --with-adam"),
             (["experiments/vral_histograms.py", str(tmp_path), "--samples", "1"], "--samples: got 1"),
             (["experiments/vral_histograms.py", str(tmp_path)], "no runs */s0")]
    for args, message in cases:
        done = subprocess.run([sys.executable, str(ROOT / args[0]), *args[1:]], capture_output=True, text=True)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)


def test_discriminator_overfitting_script_compares_training_and_held_out_images(tmp_path):
    """A digits run on the first 1500 of the 1797 images: one row per checkpoint, D's outputs on the 297 others."""
    run = tmp_path / "run"
    train = [sys.executable, "-m", "equilibria.cli.main", "train", str(ROOT / "configs/vral-digits-minimax.yaml"),
             "--run-dir", str(run), "--set", "train.steps=4", "--set", "log.checkpoint_every=2", "--set",
             "log.tensorboard=false", "--set", "log.progress=false"]
    subprocess.run([*train, "--set", "data.num_samples=1500"], check=True, capture_output=True)
    done = subprocess.run([sys.executable, str(ROOT / "experiments/discriminator_overfitting.py"), str(run),
                           "--samples", "400"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.strip("| ").split(" | ") for line in done.stdout.splitlines() if line.startswith(("| 2 |", "| 4 |"))]
    assert [row[0] for row in rows] == ["2", "4"] and all(row[1] == "nan" for row in rows)  # no FID logged
    for row in rows:  # the differences are of the printed means
        trained, held, generated = float(row[2]), float(row[3]), float(row[5])
        assert abs(float(row[4]) - (trained - held)) <= 1.5e-3 and abs(float(row[6]) - (trained - generated)) <= 1.5e-3
    assert (run / "discriminator-overfitting.png").stat().st_size > 0
    spec = importlib.util.spec_from_file_location("overfitting", ROOT / "experiments/discriminator_overfitting.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    training, held = script.held_out_images(run, 400)
    digits = load_dataset("digits")
    assert torch.equal(training.data, digits.data[:1500]) and torch.equal(held.data, digits.data[1500:1797])
    assert torch.equal(held.labels, digits.labels[1500:1797])  # a dataset of its own, labels kept in step
    whole = tmp_path / "whole"
    subprocess.run([*train[:6], str(whole), *train[7:]], check=True, capture_output=True)
    refused = subprocess.run([sys.executable, str(ROOT / "experiments/discriminator_overfitting.py"), str(whole)],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "trained on the whole dataset (data.num_samples is null)" in refused.stderr
