from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from equilibria.data import DATASETS, data_root, describe, load_dataset
from equilibria.data.transforms import resize_images


def test_unknown_name():
    with pytest.raises(ValueError, match="name: unknown dataset 'mnst'; allowed: digits, mnist, "):
        load_dataset("mnst")
    assert set(DATASETS) == {"digits", "mnist", "stacked_mnist", "ring", "grid", "cifar10", "celeba", "folder"}


def test_image_size_on_points():
    with pytest.raises(ValueError, match="image_size: ring is a 2-D points dataset.*got 32"):
        load_dataset("ring", image_size=32)


def test_num_samples_too_large():
    message = "num_samples: 5000 exceeds the 1797 samples available in digits"
    with pytest.raises(ValueError, match=message):
        load_dataset("digits", num_samples=5000)
    with pytest.raises(ValueError, match="num_samples: must be >= 1, got 0"):
        load_dataset("grid", num_samples=0)


def test_split_errors():
    with pytest.raises(ValueError, match="split: unknown split 'val'; allowed: train, test, all"):
        load_dataset("mnist", split="val")
    with pytest.raises(ValueError, match="split: digits has no test split"):
        load_dataset("digits", split="test")


def test_data_root(monkeypatch):
    monkeypatch.setenv("EQUILIBRIA_DATA", "/somewhere")
    assert data_root("given") == Path("given")
    assert data_root(None) == Path("/somewhere")
    monkeypatch.delenv("EQUILIBRIA_DATA")
    assert data_root(None) == Path("data")


def test_digits():
    bunch = load_digits()
    dataset = load_dataset("digits")
    assert dataset.data.shape == (1797, 1, 8, 8) and dataset.data.dtype == torch.uint8
    expected = np.array([[round(v * 255 / 16) for v in image.flatten()] for image in bunch.images[:20]])
    assert np.array_equal(dataset.data[:20].reshape(20, 64).numpy(), expected)
    assert dataset.labels.tolist() == bunch.target.tolist() and dataset.num_modes == 10
    assert dataset.data.max() == 255
    first = load_dataset("digits", num_samples=10, image_size=16)
    assert first.data.shape == (10, 1, 16, 16) and first.labels.equal(dataset.labels[:10])


def test_points_defaults_and_seed():
    ring = load_dataset("ring", seed=4)
    assert len(ring) == 100_000 and ring.sample_shape == (2,) and ring.num_modes == 8
    first, again = (load_dataset("grid", num_samples=30, seed=1) for _ in range(2))
    assert first.data.equal(again.data)


def test_resize_matches_pil_and_keeps_constants():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)
    for size in (14, 32):
        out = resize_images(torch.from_numpy(images), size)
        assert out.shape == (3, 1, size, size) and out.dtype == torch.uint8
        reference = np.stack([np.asarray(Image.fromarray(im[0]).resize((size, size), Image.BILINEAR))
                              for im in images])
        assert np.abs(out[:, 0].int().numpy() - reference.astype(int)).max() <= 1
    constant = torch.full((2, 3, 28, 28), 77, dtype=torch.uint8)
    assert torch.all(resize_images(constant, 32) == 77)
    with pytest.raises(ValueError, match="expected uint8"):
        resize_images(constant.float(), 32)


def test_describe():
    text = describe(load_dataset("digits"))
    assert "digits" in text and "1797" in text and "(1, 8, 8)" in text and "uint8" in text
    assert "[0, 255]" in text and f"0: {np.bincount(load_digits().target)[0]}," in text
    ring = describe(load_dataset("ring", num_samples=1000))
    assert "modes:        8" in ring and "mode std:     0.02" in ring


def test_the_config_layer_names_the_section_of_a_data_error():
    from equilibria.training.build import dataset_of
    from equilibria.training.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"config section 'data' \(data.name=digits, data.split=train\): "
                                          "num_samples: 5000 exceeds the 1797 samples"):
        dataset_of(load_config(None, ["data.num_samples=5000"]))
