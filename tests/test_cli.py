"""The equilibria command: exit codes, messages and files."""

import shutil
import subprocess
import sys

import pytest

from conftest import shared_mnist_dir

from equilibria.cli.main import main

MNIST = shared_mnist_dir()
FAST = ["--set", "train.steps=4", "--set", "generator.width=8", "--set", "discriminator.width=8",
        "--set", "log.progress=false", "--set", "log.tensorboard=false", "--set", "log.sample_every=2"]


def test_train_resume_and_sample(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), *FAST]) == 0
    assert main(["resume", str(run), "--set", "train.steps=6"]) == 0
    assert (run / "checkpoints" / "step-00000006.pt").exists()
    out = tmp_path / "grid.png"
    assert main(["sample", str(run), "-n", "9", "--out", str(out), "--tensor", str(tmp_path / "s.pt")]) == 0
    assert out.stat().st_size > 0 and (tmp_path / "s.pt").exists()
    assert "samples written to" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--set", "train.steps=-1"], "config key 'train.steps': got -1; allowed: an integer >= 1"),
        (["train", "--set", "optim.generator.name=adagrad"], "allowed: one of adam, rmsprop, sgd"),
        (["train", "nothere.yaml"], "config file 'nothere.yaml' does not exist"),
        (["train", "--set", "data.name=mnist", "--set", "data.root=/nonexistent"], "equilibria data download mnist"),
        (["sample", "/nonexistent-run"], "is not a run directory"),
        (["data", "info", "imagenet"], "allowed: digits"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_config_prints_resolved_yaml(capsys):
    assert main(["config", "--set", "objective=wgan"]) == 0
    out = capsys.readouterr().out
    assert "objective: wgan" in out and "batch_size: 64" in out


def test_data_info_describes_digits(capsys):
    assert main(["data", "info", "digits"]) == 0
    assert "1797" in capsys.readouterr().out


@pytest.fixture
def mnist_server(served):
    """The shared MNIST test split served on 127.0.0.1; returns the base URL."""
    if not (MNIST / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST test split not found at {MNIST}: set EQUILIBRIA_MNIST_DIR")
    www, base = served
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(MNIST / name, www / name)
    return base + "/"


def test_data_download_from_a_local_mirror(tmp_path, mnist_server, capsys):
    root = tmp_path / "mnist"
    assert main(["data", "download", "mnist", "--root", str(root), "--split", "test", "--mirror", mnist_server]) == 0
    assert sorted(p.name for p in root.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert "verified" in capsys.readouterr().out


def test_data_download_refuses_a_corrupt_file(tmp_path, mnist_server, capsys):
    root = tmp_path / "mnist"
    served_dir = tmp_path / "www"
    data = bytearray((served_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    data[100] ^= 0xFF
    (served_dir / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(data))
    assert main(["data", "download", "mnist", "--root", str(root), "--split", "test", "--mirror", mnist_server]) == 2
    assert "md5" in capsys.readouterr().err.lower()
    assert not (root / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in root.iterdir() if "labels" in p.name]


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "equilibria.cli.main", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "equilibria train" in result.stdout
