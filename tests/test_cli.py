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
    printed = capsys.readouterr().out
    assert f"samples written to {out}" in printed and f"tensor of the samples written to {tmp_path / 's.pt'}" in printed
    for option in ("--out", "--tensor"):  # a missing directory is refused, not created
        missing = tmp_path / "missing" / "x.png"
        assert main(["sample", str(run), option, str(missing)]) == 2
        assert f"{option}: got {str(missing)!r}, whose directory does not exist" in capsys.readouterr().err
        assert not missing.parent.exists()


def test_help_examples_name_configs_that_exist():
    import re
    from pathlib import Path

    from equilibria.cli.main import EXAMPLES

    named = re.findall(r"configs/\S+\.yaml", EXAMPLES)
    assert named and all((Path(__file__).parents[1] / name).is_file() for name in named), named


def test_every_positional_argument_has_help(capsys):
    for command in ("train", "resume", "sample", "evaluate", "experiment", "report", "config"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        positional = text.split("positional arguments:")[1].split("options:")[0] if "positional" in text else ""
        lines = positional.splitlines() + [""]
        names = [i for i, line in enumerate(lines) if line.startswith("  ") and not line.startswith("   ")]
        # the help follows the name on its line, or on the next (indented further) when the name is long
        assert names and all(len(lines[i].split()) > 1 or lines[i + 1].startswith("    ") for i in names), \
            (command, positional)


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


HELP = ["", "train", "resume", "sample", "evaluate", "experiment", "report", "config", "game", "classifier",
        "classifier train", "data", "data download", "data info"]


def test_help_of_every_command_imports_no_torch():
    script = ("import sys\nfrom equilibria.cli.main import main\n"
              f"for command in {HELP!r}:\n"
              "    try:\n        main([*command.split(), '--help'])\n    except SystemExit:\n        pass\n"
              "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert done.stdout.count("usage: equilibria") == len(HELP)


def test_the_command_lines_names_are_the_librarys():
    from equilibria import games
    from equilibria.cli import evaluate, game
    from equilibria.metrics import evaluation

    assert evaluate.METRICS == evaluation.METRICS and evaluate.EXTRACTORS == evaluation.EXTRACTORS
    assert game.METHODS == games.METHODS
