import gzip
import shutil
from pathlib import Path

import pytest
from conftest import shared_mnist_dir
import torch

from equilibria.data import load_dataset
from equilibria.data.mnist import MNIST_FILES, load_mnist

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# Published per-digit counts of the MNIST test split.
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist_dir() -> Path:
    directory = shared_mnist_dir()
    if not all((directory / name).is_file() for name in TEST_FILES):
        pytest.skip(f"MNIST test split not found at {directory}: set EQUILIBRIA_MNIST_DIR")
    return directory


def test_md5s_match_shared_md5sums(mnist_dir):
    sums = mnist_dir / "MD5SUMS"
    if not sums.is_file():
        pytest.skip(f"no MD5SUMS in {mnist_dir}")
    listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    for name, md5 in listed.items():
        assert MNIST_FILES[name] == md5


def test_test_split(mnist_dir):
    dataset = load_mnist(mnist_dir, "test")
    assert dataset.data.shape == (10000, 1, 28, 28) and dataset.data.dtype == torch.uint8
    assert dataset.labels.dtype == torch.int64 and dataset.num_modes == 10
    assert torch.bincount(dataset.labels, minlength=10).tolist() == TEST_COUNTS
    assert dataset.data.max() == 255 and dataset.data.min() == 0


def test_raw_files_and_mnist_subfolder(mnist_dir, tmp_path):
    nested = tmp_path / "mnist"
    nested.mkdir()
    for name in TEST_FILES:  # uncompressed copies, found through root/mnist
        (nested / name.removesuffix(".gz")).write_bytes(gzip.decompress((mnist_dir / name).read_bytes()))
    dataset = load_dataset("mnist", root=tmp_path, split="test", num_samples=50, image_size=32)
    reference = load_mnist(mnist_dir, "test")
    assert dataset.data.shape == (50, 1, 32, 32)
    assert dataset.labels.equal(reference.labels[:50])


def test_missing_train_split_message(mnist_dir, tmp_path):
    for name in TEST_FILES:
        shutil.copy(mnist_dir / name, tmp_path / name)
    for split in ("train", "all"):
        with pytest.raises(FileNotFoundError) as info:
            load_mnist(tmp_path, split)
        message = str(info.value)
        assert str(tmp_path) in message
        assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
        assert f"equilibria data download mnist --root {tmp_path}" in message
        assert "found the test split: set data.split=test" in message


def test_empty_directory_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path, "test")
    message = str(info.value)
    assert "t10k-images-idx3-ubyte" in message and "data.split" not in message
