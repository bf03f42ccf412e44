import os
import pickle

import numpy as np
import pytest
import torch

from equilibria.data import load_dataset
from equilibria.data.cifar import load_cifar10


def _write_batch(path, n, offset, protocol):
    rng = np.random.default_rng(offset)
    batch = {b"batch_label": b"fake", b"labels": [(offset + i) % 10 for i in range(n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"img{offset + i}.png".encode() for i in range(n)]}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
    return batch


@pytest.fixture(params=[2, 4, 5], ids=lambda p: f"protocol{p}")
def cifar_root(tmp_path, request):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [_write_batch(folder / f"data_batch_{i}", 3, 10 * i, request.param) for i in range(1, 6)]
    batches.append(_write_batch(folder / "test_batch", 4, 100, request.param))
    return tmp_path, batches


def test_fake_batches_load(cifar_root):
    root, batches = cifar_root
    train = load_cifar10(root, "train")
    assert train.data.shape == (15, 3, 32, 32) and train.data.dtype == torch.uint8
    expected = np.concatenate([b[b"data"] for b in batches[:5]]).reshape(15, 3, 32, 32)
    assert np.array_equal(train.data.numpy(), expected)
    assert train.labels.tolist() == [label for b in batches[:5] for label in b[b"labels"]]
    test = load_cifar10(root / "cifar-10-batches-py", "test")  # root inside the folder
    assert np.array_equal(test.data.numpy().reshape(4, 3072), batches[5][b"data"])
    assert len(load_cifar10(root, "all")) == 19
    assert load_dataset("cifar10", root=root, split="test", num_samples=2).data.shape == (2, 3, 32, 32)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"echo hi > {self.marker}",)


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(marker), b"labels": []}, f)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        load_cifar10(tmp_path, "test")
    assert not marker.exists()


def test_other_globals_are_refused(tmp_path):
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": torch.zeros(1), b"labels": []}, f)
    with pytest.raises(pickle.UnpicklingError, match="torch"):
        load_cifar10(tmp_path, "test")


def test_missing_batches(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path, "train")
    message = str(info.value)
    assert str(tmp_path) in message and "data_batch_1" in message and "cifar-10-python.tar.gz" in message
