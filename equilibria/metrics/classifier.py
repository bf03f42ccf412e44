"""Small CNN digit classifiers for offline FID ("classifier FID") and mode counting.

One architecture, for scikit-learn's 8x8 digits and for 28x28 MNIST: two 3x3 convolutions with
ReLU and 2x2 max pooling (``width`` and ``2 * width`` channels), a 128-unit ReLU layer (the
penultimate features) and a linear layer to 10 logits. Inputs are grey images in [0, 1].

Training is deterministic: the weights' initialisation, the held-out split, the data order and
the augmentation come from ``seed`` (the global random state is saved and restored around it, so
a training run's random stream is untouched), and the thread count is fixed (``threads``), so two
trainings with the same data and settings give identical weights. A fixed share (``holdout``) of
the data is held out and the accuracy on it is reported. Adam with a one-cycle learning rate
schedule; MNIST images are shifted by up to ``shift`` pixels at random (zero padding). Held-out
accuracy with the default settings: MNIST 98.55-98.90% (seeds 0-2, 2000 of the 10k test split held
out, about 100 s on one thread: ``experiments/classifier_accuracy.py``), digits 98.6% (seed 0).

Trained classifiers are cached in ``<cache>/classifiers/`` (``<cache>``: ``$EQUILIBRIA_CACHE`` or
``~/.cache/equilibria``), keyed by the sha256 of the images, the labels and the settings, and
loaded with ``torch.load(weights_only=True)``.

:class:`ClassifierFeatures` is a classifying feature extractor (see ``equilibria.metrics.features``):
the penultimate features and the logits. For stacked MNIST each channel is classified as an MNIST
digit: the features are the three channels' features concatenated (R, G, B; 3 x 128 = 384), and
the logits are the 1000 joint log-probabilities log p(d_R) + log p(d_G) + log p(d_B) of mode
100 d_R + 10 d_G + d_B (the channels are classified independently).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from equilibria.data import Dataset, load_dataset
from equilibria.metrics.inception import to_uint8_levels
from equilibria.files import cache_dir as default_cache_dir
from equilibria.files import save_atomically

CLASSIFIER_DATASETS = ("digits", "mnist", "stacked_mnist")
FEATURE_DIM = 128
_VERSION = 1  # bump when the architecture or the training procedure changes


@dataclass(frozen=True)
class ClassifierSettings:
    """Everything besides the data that determines the trained weights."""

    epochs: int
    shift: int  # augmentation: random shifts of up to this many pixels
    width: int = 32
    batch_size: int = 64
    max_lr: float = 3e-3
    holdout: float = 0.2
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        for key in ("epochs", "width", "batch_size", "threads"):
            if getattr(self, key) < 1:
                raise ValueError(f"classifier {key}: got {getattr(self, key)}; allowed: an integer >= 1")
        if self.shift < 0:
            raise ValueError(f"classifier shift: got {self.shift}; allowed: an integer >= 0")
        if not 0 < self.holdout < 1:
            raise ValueError(f"classifier holdout: got {self.holdout}; allowed: a share between 0 and 1")
        if not self.max_lr > 0:
            raise ValueError(f"classifier max_lr: got {self.max_lr}; allowed: a number > 0")


DEFAULT_SETTINGS = {
    "digits": ClassifierSettings(epochs=15, shift=0),
    "mnist": ClassifierSettings(epochs=6, shift=2),
}


class DigitClassifier(nn.Module):
    """conv3-ReLU-pool (w), conv3-ReLU-pool (2w), Linear-ReLU (128 features), Linear (10 logits)."""

    def __init__(self, image_size: int, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        if image_size < 4:
            raise ValueError(f"image_size: got {image_size}; allowed: an integer >= 4")
        self.image_size = image_size
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * width * (image_size // 4) ** 2, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features (N, 128) of grey images (N, 1, S, S) in [0, 1]."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


@dataclass
class TrainedClassifier:
    """A trained classifier, its held-out accuracy and where it is cached."""

    network: DigitClassifier
    accuracy: float
    key: str
    path: Path
    dataset: str
    from_cache: bool


def classifier_key(images: Tensor, labels: Tensor, settings: ClassifierSettings) -> str:
    """sha256 of the images' and labels' bytes and shapes, the settings and the procedure's version."""
    digest = hashlib.sha256()
    for tensor in (images, labels):
        digest.update(f"{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    digest.update(json.dumps({"version": _VERSION, **dataclasses.asdict(settings)}, sort_keys=True).encode())
    return digest.hexdigest()


@contextlib.contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded global random state and a fixed thread count, both restored on exit."""
    previous_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous_threads)


def _shifted(batch: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Each image moved by a random offset in [-shift, shift]^2, zeros shifted in."""
    n, _, h, w = batch.shape
    padded = F.pad(batch, (shift, shift, shift, shift))
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n, 1), generator=generator)
    rows, cols = torch.arange(h) + dy, torch.arange(w) + dx
    return padded[torch.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def _accuracy(network: nn.Module, images: Tensor, labels: Tensor) -> float:
    network.eval()
    with torch.no_grad():
        predictions = torch.cat([network(chunk).argmax(1) for chunk in images.split(1000)])
    return (predictions == labels).double().mean().item()


def fit_classifier(images: Tensor, labels: Tensor, settings: ClassifierSettings,
                   progress: bool = True) -> tuple[DigitClassifier, float]:
    """Train on uint8 grey images (N, 1, S, S) with labels 0..9; returns the network and held-out accuracy."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 1 or images.shape[2] != images.shape[3]:
        raise ValueError(f"classifier images: got {images.dtype} {tuple(images.shape)}; "
                         "allowed: uint8 (N, 1, S, S) grey square images")
    if labels.shape != (len(images),) or labels.min() < 0 or labels.max() > 9:
        raise ValueError("classifier labels: need one label in 0..9 per image")
    x, y = images.float() / 255, labels.long()
    with _deterministic(settings.seed, settings.threads):
        generator = torch.Generator().manual_seed(settings.seed)
        order = torch.randperm(len(x), generator=generator)
        held = round(settings.holdout * len(x))
        if not 1 <= held <= len(x) - settings.batch_size:
            raise ValueError(f"classifier holdout: {settings.holdout} of {len(x)} images leaves {held} held out "
                             f"and {len(x) - held} to train on; allowed: at least 1 held out and a full batch "
                             f"({settings.batch_size}) to train on")
        test, train = order[:held], order[held:]
        network = DigitClassifier(images.shape[-1], settings.width)
        steps_per_epoch = len(train) // settings.batch_size
        optimizer = torch.optim.Adam(network.parameters())
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.max_lr,
                                                       total_steps=settings.epochs * steps_per_epoch)
        with tqdm(total=settings.epochs * steps_per_epoch, desc="classifier", unit="batch", leave=False,
                  disable=not progress) as bar:
            for _ in range(settings.epochs):
                network.train()
                shuffled = train[torch.randperm(len(train), generator=generator)]
                for batch in shuffled[:steps_per_epoch * settings.batch_size].split(settings.batch_size):
                    inputs = _shifted(x[batch], settings.shift, generator) if settings.shift else x[batch]
                    loss = F.cross_entropy(network(inputs), y[batch])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    bar.update(1)
        accuracy = _accuracy(network, x[test], y[test])
    return network.eval(), accuracy


def load_classifier_data(dataset_name: str, data_root: str | Path | None = None, split: str = "train") -> Dataset:
    """The labelled grey images a dataset's classifier is trained on (MNIST for stacked MNIST)."""
    if dataset_name not in CLASSIFIER_DATASETS:
        raise ValueError(f"classifier dataset: got {dataset_name!r}; allowed: {', '.join(CLASSIFIER_DATASETS)}")
    base = "mnist" if dataset_name == "stacked_mnist" else dataset_name
    return load_dataset(base, root=data_root, split=split if base == "mnist" else "train")


def train_classifier(dataset_name: str, data_root: str | Path | None = None, split: str = "train", *,
                     settings: ClassifierSettings | None = None, cache_dir: str | Path | None = None,
                     progress: bool = True) -> TrainedClassifier:
    """The classifier of ``dataset_name`` (digits, mnist, stacked_mnist), from the cache or trained.

    MNIST (and stacked MNIST, whose channels are MNIST digits) is read from ``data_root`` and
    ``split``; the bundled digits ignore both.
    """
    data = load_classifier_data(dataset_name, data_root, split)
    settings = settings or DEFAULT_SETTINGS[data.name]
    key = classifier_key(data.data, data.labels, settings)
    path = Path(cache_dir or default_cache_dir()) / "classifiers" / f"{data.name}-{key[:16]}.pt"
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        with torch.random.fork_rng(devices=[]):  # the initial weights it draws are overwritten
            network = DigitClassifier(state["image_size"], state["width"])
        network.load_state_dict(state["network"])
        return TrainedClassifier(network.eval(), state["accuracy"], key, path, data.name, from_cache=True)
    start = time.perf_counter()
    network, accuracy = fit_classifier(data.data, data.labels, settings, progress)
    save_atomically({"network": network.state_dict(), "image_size": network.image_size, "width": settings.width,
                 "accuracy": accuracy, "key": key, "dataset": data.name, "settings": dataclasses.asdict(settings),
                 "seconds": time.perf_counter() - start}, path)
    return TrainedClassifier(network, accuracy, key, path, data.name, from_cache=False)


class ClassifierFeatures(nn.Module):
    """A dataset classifier as a classifying feature extractor (``equilibria.metrics.features``).

    Takes uint8 images, or float images in ``value_range`` (clamped to it and rounded to the 256
    levels a PNG would store, as the FID Inception does), with ``channels`` channels (1; 3 for
    stacked MNIST), resized bilinearly (antialiased) to the classifier's size when they differ.
    """

    def __init__(self, trained: TrainedClassifier, channels: int = 1,
                 value_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels: got {channels}; allowed: 1 (digits, MNIST) or 3 (stacked MNIST)")
        self.network = trained.network
        self.accuracy = trained.accuracy
        self.channels = channels
        self.value_range = value_range
        self.dim = FEATURE_DIM * channels
        self.num_classes = 10 ** channels
        self.name = f"classifier-{trained.dataset}{'-stacked' if channels == 3 else ''}-{trained.key[:12]}"
        self.eval()

    def _grey(self, images: Tensor) -> Tensor:
        """(N * channels, 1, S, S) in [0, 1]."""
        if images.dim() != 4 or images.shape[1] != self.channels:
            raise ValueError(f"{self.name}: images must be (N, {self.channels}, H, W); got shape {tuple(images.shape)}")
        levels = to_uint8_levels(images, None if images.dtype == torch.uint8 else self.value_range) / 255
        grey = levels.reshape(-1, 1, *images.shape[2:])
        size = self.network.image_size
        if grey.shape[-2:] != (size, size):
            grey = F.interpolate(grey, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return grey

    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.network.features(self._grey(images))
        logits = self.network.head(features)
        features = features.reshape(len(images), self.dim)
        if self.channels == 1:
            return features, logits
        r, g, b = torch.log_softmax(logits, dim=1).reshape(len(images), 3, 10).unbind(1)
        joint = r[:, :, None, None] + g[:, None, :, None] + b[:, None, None, :]
        return features, joint.reshape(len(images), 1000)

    def forward(self, images: Tensor) -> Tensor:
        return self.features_and_logits(images)[0]

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        """Predicted class (N,): the digit, or the stacked-MNIST mode 100 d_R + 10 d_G + d_B."""
        return self.features_and_logits(images)[1].argmax(dim=1)


def classifier_extractor(dataset_name: str, data_root: str | Path | None = None, split: str = "train", *,
                         value_range: tuple[float, float] = (-1.0, 1.0), cache_dir: str | Path | None = None,
                         progress: bool = True) -> ClassifierFeatures:
    """The feature extractor of ``dataset_name``'s classifier (trained and cached on first use)."""
    trained = train_classifier(dataset_name, data_root, split, cache_dir=cache_dir, progress=progress)
    return ClassifierFeatures(trained, 3 if dataset_name == "stacked_mnist" else 1, value_range)
