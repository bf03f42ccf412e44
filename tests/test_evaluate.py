"""The evaluation API: sampling, metric selection, reference caching and the scores' wiring."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from equilibria.data import Dataset, load_dataset
from equilibria.metrics import cache as cache_module
from equilibria.metrics import evaluation as E
from equilibria.metrics.frechet import feature_statistics, frechet_distance
from equilibria.metrics.scores import inception_score, kernel_inception_distance


class Projection(nn.Module):
    """A fixed random linear map as a classifying feature extractor: features = flat images @ W."""

    def __init__(self, in_features: int, dim: int = 6, num_classes: int = 4, value_range=(-1.0, 1.0)):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(in_features, dim, generator=g), requires_grad=False)
        self.head = nn.Parameter(torch.randn(dim, num_classes, generator=g), requires_grad=False)
        self.name, self.dim, self.num_classes, self.value_range = f"projection-{dim}", dim, num_classes, value_range

    def features_and_logits(self, images):
        x = images.float() / 255 * 2 - 1 if images.dtype == torch.uint8 else images.float()
        features = x.flatten(1) @ self.weight
        return features, features @ self.head

    def forward(self, images):
        return self.features_and_logits(images)[0]


class PointGenerator(nn.Module):
    """z -> the centre of mode 0 plus tiny noise: a collapsed generator on one mode."""

    latent_dim, out_shape, output_range = 2, (2,), None

    def __init__(self, center):
        super().__init__()
        self.center = nn.Parameter(center.clone(), requires_grad=False)

    def forward(self, z):
        return self.center + 1e-3 * z


class ImageGenerator(nn.Module):
    latent_dim, out_shape, output_range = 3, (1, 8, 8), (-1.0, 1.0)

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 64), nn.BatchNorm1d(64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))

    def forward(self, z):
        return self.net(z)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUILIBRIA_CACHE", str(tmp_path))
    return tmp_path


def test_ring_samples_cover_every_mode_and_a_collapsed_generator_one(cache):
    ring = load_dataset("ring", num_samples=2000, seed=0)
    assert E.evaluate(ring.data, ring)["modes"] == 8.0
    scores = E.evaluate(PointGenerator(ring.centers[0]), ring, num_samples=500, progress=False)
    assert scores == {"modes": 1.0, "high_quality": 1.0, "kl": pytest.approx(math.log(8))}  # all on one of 8


def test_metric_selection(cache):
    ring = load_dataset("ring", num_samples=100, seed=0)
    digits = load_dataset("digits")
    assert E.applicable_metrics(ring) == ("modes",)
    assert E.applicable_metrics(digits) == ("fid", "is", "kid", "pr")
    with pytest.raises(ValueError, match=r"metrics: 'modes' does not apply to digits; allowed: fid, is, kid, pr"):
        E.evaluate(digits.data[:10], digits, ["modes"], Projection(64))
    with pytest.raises(ValueError, match=r"metrics: unknown metric 'lpips'"):
        E.evaluate(ring.data, ring, ["lpips"])
    with pytest.raises(ValueError, match=r"extractor: ring is a 2-D points dataset"):
        E.default_extractor("ring")
    with pytest.raises(ValueError, match=r"extractor: ring is a 2-D points dataset, scored on the points"):
        E.evaluate(ring.data, ring, extractor=Projection(2))
    with pytest.raises(ValueError, match=r"extractor: no classifier for cifar10"):
        E.default_extractor("cifar10", "classifier")


def test_scores_of_the_reference_against_itself(cache):
    digits = load_dataset("digits")
    extractor = Projection(64)
    data = digits.data[:600]
    scores = E.evaluate(data, digits, ["fid", "is", "kid", "pr"], extractor, reference_size=600,
                        kid_subset_size=300, kid_subsets=5, progress=False)
    assert scores["fid"] == pytest.approx(0.0, abs=1e-6)
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0
    with torch.no_grad():
        features, logits = extractor.features_and_logits(data)
    kid = kernel_inception_distance(features, features, subsets=5, subset_size=300, seed=0)
    assert (scores["kid"], scores["kid_std"]) == pytest.approx(kid, rel=1e-5)
    assert (scores["is"], scores["is_std"]) == pytest.approx(inception_score(logits, 10), rel=1e-6)


def test_fid_of_other_samples_matches_statistics_computed_by_hand(cache):
    digits = load_dataset("digits")
    extractor = Projection(64)
    fake = torch.rand(400, 1, 8, 8) * 2 - 1
    scores = E.evaluate(fake, digits, ["fid"], extractor, reference_size=1000, progress=False)
    with torch.no_grad():
        fake_stats, real_stats = feature_statistics(extractor(fake)), feature_statistics(extractor(digits.data[:1000]))
    expected = frechet_distance(fake_stats, real_stats)
    assert scores["fid"] == pytest.approx(expected, rel=1e-5)


def test_reference_features_are_cached_and_reused(cache, monkeypatch):
    digits = load_dataset("digits")
    extractor = Projection(64)
    first = E.reference_features(digits, extractor, size=500, progress=False)
    assert len(list((cache / "references").glob("*.npz"))) == 1

    def no_extraction(*args, **kwargs):
        raise AssertionError("extracted the reference features again instead of loading the cache")

    monkeypatch.setattr("equilibria.metrics.features.extract_features", no_extraction)
    again = E.reference_features(digits, extractor, size=500, progress=False)
    assert np.array_equal(again.features, first.features)
    assert np.array_equal(again.statistics.sigma, first.statistics.sigma)
    with pytest.raises(AssertionError, match="again"):  # another size is another entry
        E.reference_features(digits, extractor, size=400, progress=False)


def test_reference_key_depends_on_every_field():
    fields = dict(dataset="mnist", split="test", size=10, data="ab", extractor="x", preprocessing="uint8")
    key = cache_module.reference_key(**fields)
    for name in fields:
        assert cache_module.reference_key(**{**fields, name: fields[name] + "!" if name != "size" else 11}) != key


def test_generator_sampling_is_seeded_batch_independent_and_side_effect_free(cache):
    digits = load_dataset("digits")
    torch.manual_seed(0)
    generator = ImageGenerator().train()
    state = torch.get_rng_state()
    running_mean = generator.net[1].running_mean.clone()
    options = dict(metrics=["fid"], extractor=Projection(64), num_samples=300, reference_size=500, progress=False)
    first = E.evaluate(generator, digits, batch_size=64, **options)
    second = E.evaluate(generator, digits, batch_size=300, **options)
    other_seed = E.evaluate(generator, digits, batch_size=64, seed=1, **options)
    assert first["fid"] == pytest.approx(second["fid"], rel=1e-6)
    assert other_seed["fid"] != pytest.approx(first["fid"], rel=1e-6)
    assert torch.equal(torch.get_rng_state(), state)
    assert generator.training and torch.equal(generator.net[1].running_mean, running_mean)


def test_evaluator_fixes_everything_but_the_generator(cache):
    digits = load_dataset("digits")
    generator = ImageGenerator()
    score = E.evaluator(digits, ["fid", "kid"], Projection(64), num_samples=200, reference_size=500,
                        kid_subset_size=100, kid_subsets=3)
    assert len(list((cache / "references").glob("*.npz"))) == 1  # reference cached up front
    assert score(generator) == E.evaluate(generator, digits, ["fid", "kid"], Projection(64), num_samples=200,
                                          reference_size=500, kid_subset_size=100, kid_subsets=3, progress=False)


def test_kid_subset_larger_than_the_samples_is_reported(cache):
    digits = load_dataset("digits")
    with pytest.raises(ValueError, match=r"kid subset_size: got 1000, but the sets have 200 and 1797 samples"):
        E.evaluate(torch.zeros(200, 1, 8, 8), digits, ["kid"], Projection(64), progress=False)


def test_wrong_sample_shape_and_value_range_are_reported(cache):
    digits = load_dataset("digits")
    with pytest.raises(ValueError, match=r"source: samples of shape \(1, 28, 28\); allowed: digits's sample shape"):
        E.evaluate(torch.zeros(10, 1, 28, 28), digits, ["fid"], Projection(64))
    with pytest.raises(ValueError, match=r"takes float images in \(-1.0, 1.0\), but the samples lie in \(0.0, 1.0\)"):
        E.evaluate(torch.zeros(10, 1, 8, 8), digits, ["fid"], Projection(64), value_range=(0.0, 1.0))


class ModeReader(nn.Module):
    """Stacked-MNIST 'classifier' reading each channel's digit from its first pixel: one-hot logits."""

    name, dim, num_classes, value_range = "mode-reader", 3, 1000, (-1.0, 1.0)

    def features_and_logits(self, images):
        digits = images[:, :, 0, 0].long()
        modes = 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]
        return digits.float(), 50.0 * nn.functional.one_hot(modes, 1000).float()

    def forward(self, images):
        return self.features_and_logits(images)[0]


def test_stacked_mnist_modes_and_kl_come_from_the_classifier_logits(cache):
    images = torch.zeros(6, 3, 4, 4, dtype=torch.uint8)
    images[:, :, 0, 0] = torch.tensor([[1, 2, 3], [1, 2, 3], [1, 2, 3], [0, 0, 7], [0, 0, 7], [9, 9, 9]])
    stacked = Dataset("stacked_mnist", images, None, "image", num_modes=1000)
    scores = E.evaluate(images, stacked, ["modes"], ModeReader(), progress=False)
    expected_kl = sum(p * np.log(p * 1000) for p in (1 / 2, 1 / 3, 1 / 6))
    assert scores["modes"] == 3.0
    assert scores["kl"] == pytest.approx(expected_kl, rel=1e-9)
    with pytest.raises(ValueError, match=r"modes on stacked_mnist need the stacked MNIST classifier"):
        E.evaluate(images, stacked, ["modes"], Projection(48, num_classes=10))


CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_RUN = ["train.steps=4", "train.batch_size=16", "generator.width=8", "discriminator.width=8",
            "log.checkpoint_every=4", "log.sample_every=4", "log.progress=false", "log.tensorboard=false",
            "log.num_samples=4", "threads=1"]


def run_cli(argv):
    import argparse

    from equilibria.cli.evaluate import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


def test_evaluate_command_on_a_ring_run(tmp_path, cache, capsys):
    import json

    from equilibria.training.config import load_config
    from equilibria.training.run import train

    run = train(load_config(CONFIGS / "ring8.yaml", TINY_RUN + ["data.num_samples=500"]), tmp_path / "run")
    run_cli(["evaluate", str(run), "--num-samples", "300", "--no-progress"])
    record = json.loads((run / "eval" / "step-00000004.json").read_text())
    assert record["step"] == 4 and record["dataset"] == "ring" and record["extractor"] is None
    assert record["ema"] is False  # the run kept no EMA
    assert set(record["scores"]) <= {"modes", "high_quality", "kl"} and "modes" in record["scores"]
    assert "modes" in capsys.readouterr().out


def test_evaluate_command_on_an_image_run_passes_the_runs_data_to_the_extractor(tmp_path, cache, monkeypatch):
    import json

    from equilibria.training.config import load_config
    from equilibria.training.run import train

    calls = []

    def stub_extractor(name, kind, **kwargs):
        calls.append((name, kind, kwargs))
        return Projection(64)

    monkeypatch.setattr(E, "default_extractor", stub_extractor)
    run = train(load_config(CONFIGS / "digits.yaml", TINY_RUN), tmp_path / "run")
    out = tmp_path / "scores.json"
    run_cli(["evaluate", str(run), "--metrics", "fid,pr", "--num-samples", "200", "--reference-size", "300",
             "--out", str(out), "--no-progress"])
    record = json.loads(out.read_text())
    assert set(record["scores"]) == {"fid", "precision", "recall"} and record["extractor"] == "projection-6"
    assert calls == [("digits", None, {"value_range": (-1.0, 1.0), "data_root": None, "data_split": "train",
                                       "cache_dir": None, "progress": False})]


def test_evaluate_command_rejects_unknown_metrics():
    with pytest.raises(SystemExit):
        run_cli(["evaluate", "somewhere", "--metrics", "fid,lpips"])


def test_image_datasets_without_a_classifier_default_to_the_fid_inception(tmp_path, monkeypatch):
    from equilibria.metrics.features import InceptionFeatures
    from equilibria.metrics.inception import FIDInceptionV3

    weights = tmp_path / "random-inception.pth"
    torch.save(FIDInceptionV3().state_dict(), weights)
    monkeypatch.setenv("EQUILIBRIA_FID_WEIGHTS", str(weights))
    state = torch.get_rng_state()
    extractor = E.default_extractor("cifar10", value_range=(0.0, 1.0))
    assert torch.equal(torch.get_rng_state(), state)
    assert isinstance(extractor, InceptionFeatures) and extractor.value_range == (0.0, 1.0)
    monkeypatch.setenv("EQUILIBRIA_FID_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(FileNotFoundError, match="FID Inception weights not found"):
        E.default_extractor("folder")
