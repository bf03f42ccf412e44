"""Dataset classifiers: deterministic training, held-out accuracy, the cache, the extractor's maths.

The MNIST accuracy (>= 98%, about 100 s) is measured by experiments/classifier_accuracy.py.
"""

import pytest
import torch

from equilibria.data import load_dataset
from equilibria.metrics import classifier as C
from equilibria.metrics.features import ClassifierExtractor, extract_features

TINY = C.ClassifierSettings(epochs=2, shift=1, width=4)


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    return C.train_classifier("digits", cache_dir=tmp_path_factory.mktemp("cache"), progress=False)


def test_training_is_deterministic_and_leaves_the_global_random_state_and_threads_alone():
    digits = load_dataset("digits")
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    first, accuracy_1 = C.fit_classifier(digits.data, digits.labels, TINY, progress=False)
    second, accuracy_2 = C.fit_classifier(digits.data, digits.labels, TINY, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    assert accuracy_1 == accuracy_2
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    other, _ = C.fit_classifier(digits.data, digits.labels, C.ClassifierSettings(epochs=2, shift=1, width=4, seed=1),
                                progress=False)
    assert not torch.equal(other.head.weight, first.head.weight)


def test_digits_classifier_accuracy_on_the_held_out_share(digits_classifier):
    digits = load_dataset("digits")
    held_out = torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))[:round(0.2 * len(digits))]
    with torch.no_grad():
        predictions = digits_classifier.network(digits.data[held_out].float() / 255).argmax(1)
    accuracy = (predictions == digits.labels[held_out]).double().mean().item()
    assert accuracy == pytest.approx(digits_classifier.accuracy)
    assert accuracy >= 0.95


def test_second_call_loads_the_cached_weights(digits_classifier, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(C, "fit_classifier", no_training)
    state = torch.get_rng_state()
    again = C.train_classifier("digits", cache_dir=digits_classifier.path.parents[1], progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert again.from_cache and again.path == digits_classifier.path
    assert again.accuracy == digits_classifier.accuracy
    for a, b in zip(again.network.state_dict().values(), digits_classifier.network.state_dict().values()):
        assert torch.equal(a, b)


def test_cache_key_changes_with_data_and_settings():
    images, labels = torch.zeros(10, 1, 8, 8, dtype=torch.uint8), torch.zeros(10, dtype=torch.long)
    key = C.classifier_key(images, labels, TINY)
    assert key == C.classifier_key(images.clone(), labels.clone(), TINY)
    changed = images.clone()
    changed[3, 0, 2, 2] = 1
    assert C.classifier_key(changed, labels, TINY) != key
    assert C.classifier_key(images, labels, C.ClassifierSettings(epochs=3, shift=1, width=4)) != key


def random_classifier(image_size=28):
    torch.manual_seed(0)
    network = C.DigitClassifier(image_size, width=4).eval()
    return C.TrainedClassifier(network, 0.5, "f" * 64, None, "mnist", False)


def test_stacked_extractor_concatenates_channel_features_and_adds_channel_log_probabilities():
    extractor = C.ClassifierFeatures(random_classifier(), channels=3)
    assert isinstance(extractor, ClassifierExtractor)
    images = torch.randint(0, 256, (5, 3, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        features, logits = extractor.features_and_logits(images)
        channels = [images[:, c:c + 1].float() / 255 for c in range(3)]
        own = [extractor.network.features(x) for x in channels]
        log_p = [torch.log_softmax(extractor.network(x), dim=1) for x in channels]
    assert extractor.dim == 384 and features.shape == (5, 384)
    assert torch.allclose(features, torch.cat(own, dim=1), atol=1e-6)
    for n, (r, g, b) in enumerate([(0, 0, 0), (3, 1, 4), (9, 9, 9), (2, 7, 0), (5, 0, 8)]):
        expected = log_p[0][n, r] + log_p[1][n, g] + log_p[2][n, b]
        assert logits[n, 100 * r + 10 * g + b].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    digits = [p.argmax(1) for p in log_p]
    assert torch.equal(extractor.predict(images), 100 * digits[0] + 10 * digits[1] + digits[2])


def test_extractor_maps_the_value_range_and_resizes():
    extractor = C.ClassifierFeatures(random_classifier(), value_range=(-1.0, 1.0))
    images = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    as_floats = images.float() / 255 * 2 - 1  # the same images in [-1, 1]
    with torch.no_grad():
        assert torch.allclose(extractor(images), extractor(as_floats), atol=1e-6)
        big = torch.nn.functional.interpolate(images.float() / 255, size=(32, 32), mode="bilinear") * 2 - 1
        assert extractor(big).shape == (4, 128)


def test_extractor_runs_through_extract_features_with_logits():
    extractor = C.ClassifierFeatures(random_classifier(8))
    images = torch.rand(7, 1, 8, 8) * 2 - 1
    features, logits = extract_features(extractor, images, batch_size=3, progress=False, logits=True)
    with torch.no_grad():
        assert torch.allclose(features, extractor(images), atol=1e-6)
        assert torch.allclose(logits, extractor.network(extractor._grey(images)), atol=1e-6)


def test_extractor_rejects_the_wrong_channel_count():
    extractor = C.ClassifierFeatures(random_classifier())
    with pytest.raises(ValueError, match=r"images must be \(N, 1, H, W\)"):
        extractor(torch.zeros(2, 3, 28, 28))


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match=r"classifier dataset: got 'cifar10'; allowed: digits, mnist, stacked_mnist"):
        C.train_classifier("cifar10")


def test_settings_are_checked():
    with pytest.raises(ValueError, match="classifier holdout: got 1.5"):
        C.ClassifierSettings(epochs=1, shift=0, holdout=1.5)


def test_train_command_reports_the_accuracy_and_the_cache(digits_classifier, capsys):
    import argparse

    from equilibria.cli.classifier import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["classifier", "train", "digits", "--cache-dir", str(digits_classifier.path.parents[1]),
                              "--no-progress"])
    args.func(args)
    out = capsys.readouterr().out
    assert f"digits classifier found in the cache: held-out accuracy {100 * digits_classifier.accuracy:.2f}%" in out
    assert str(digits_classifier.path) in out
