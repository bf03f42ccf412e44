import pytest
import torch

from equilibria.data.dataset import Dataset
from equilibria.data.stacked import stacked_mnist


def _fake_mnist(n: int = 200) -> Dataset:
    """Distinct images: pixel (0, 0) holds the image's index; labels are random digits."""
    generator = torch.Generator().manual_seed(0)
    data = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=generator)
    data[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(1))
    return Dataset("mnist", data, labels, "image", num_modes=10)


def test_labels_match_the_stacked_digits():
    mnist = _fake_mnist()
    stacked = stacked_mnist(mnist, 500, seed=3)
    assert stacked.data.shape == (500, 3, 28, 28) and stacked.data.dtype == torch.uint8
    assert stacked.num_modes == 1000 and stacked.labels.dtype == torch.int64
    for image, label in zip(stacked.data, stacked.labels.tolist()):
        sources = [int(channel[0, 0]) for channel in image]  # recover the picked images
        for channel, source in zip(image, sources):
            assert channel.equal(mnist.data[source, 0])
        r, g, b = (int(mnist.labels[s]) for s in sources)
        assert label == 100 * r + 10 * g + b


def test_channels_are_drawn_independently():
    stacked = stacked_mnist(_fake_mnist(), 2000, seed=0)
    sources = stacked.data[:, :, 0, 0].long()
    assert (sources[:, 0] != sources[:, 1]).float().mean() > 0.95
    assert len(sources.unique()) > 190  # nearly all 200 source images get used


def test_reproducible_from_seed():
    mnist = _fake_mnist()
    a, b, c = (stacked_mnist(mnist, 50, seed=s) for s in (7, 7, 8))
    assert a.data.equal(b.data) and a.labels.equal(b.labels)
    assert not a.data.equal(c.data)


def test_needs_single_channel_labelled_images():
    data, labels = torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long)
    rgb = Dataset("cifar10", data, labels, "image")
    with pytest.raises(ValueError, match="single-channel"):
        stacked_mnist(rgb, 10, seed=0)
