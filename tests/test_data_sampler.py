import io

import pytest
import torch

from equilibria.data import BatchSampler
from equilibria.data.dataset import Dataset


def _images(n: int = 12) -> Dataset:
    """Image i is filled with the value i, so a batch reveals which indices it holds."""
    data = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return Dataset("fake", data, None, "image")


def _indices(batch: torch.Tensor) -> list[int]:
    return [round(v) for v in batch[:, 0, 0, 0].tolist()]


def test_same_seed_same_batches():
    a, b, c = (BatchSampler(_images(), 4, seed=s, value_range=None) for s in (5, 5, 6))
    first = [a.next() for _ in range(7)]
    assert all(x.equal(y) for x, y in zip(first, (b.next() for _ in range(7))))
    assert not all(x.equal(y) for x, y in zip(first, (c.next() for _ in range(7))))


def test_epoch_covers_each_index_once():
    sampler = BatchSampler(_images(12), 4, seed=0, value_range=None)
    for epoch in range(3):
        seen = [i for _ in range(3) for i in _indices(sampler.next())]
        assert sorted(seen) == list(range(12))
    assert sampler.epoch == 2


def test_partial_batch_is_dropped():
    sampler = BatchSampler(_images(10), 4, seed=1, value_range=None)
    first_epoch = [i for _ in range(2) for i in _indices(sampler.next())]
    assert len(set(first_epoch)) == 8 and sampler.epoch == 0
    sampler.next()
    assert sampler.epoch == 1


def test_state_dict_round_trip():
    sampler = BatchSampler(_images(10), 3, seed=2)
    for _ in range(4):  # into the second epoch
        sampler.next()
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    expected = [sampler.next() for _ in range(8)]
    buffer.seek(0)
    restored = BatchSampler(_images(10), 3, seed=99)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert all(x.equal(y) for x, y in zip(expected, (restored.next() for _ in range(8))))
    assert restored.epoch == sampler.epoch


def test_state_for_other_dataset_size_is_refused():
    state = BatchSampler(_images(10), 3, seed=2).state_dict()
    with pytest.raises(ValueError, match="saved for 10 samples, but this dataset has 12"):
        BatchSampler(_images(12), 3, seed=2).load_state_dict(state)


def test_value_range_mapping():
    data = torch.tensor([0, 255, 51], dtype=torch.uint8).view(3, 1, 1, 1)
    dataset = Dataset("fake", data, None, "image")
    batch = BatchSampler(dataset, 3, seed=0).next()
    assert batch.dtype == torch.float32
    assert sorted(batch.flatten().tolist()) == pytest.approx([-1.0, 51 / 255 * 2 - 1, 1.0], abs=1e-6)
    unit = BatchSampler(dataset, 3, seed=0, value_range=(0.0, 1.0)).next()
    assert sorted(unit.flatten().tolist()) == pytest.approx([0.0, 0.2, 1.0], abs=1e-6)


def test_points_are_returned_as_is():
    points = torch.randn(6, 2)
    sampler = BatchSampler(Dataset("ring", points, None, "points"), 6, seed=0)
    batch = sampler.next()
    assert sorted(map(tuple, batch.tolist())) == sorted(map(tuple, points.tolist()))


def test_batch_size_larger_than_dataset():
    with pytest.raises(ValueError, match=r"batch_size: .*\(10 samples in fake\), got 11"):
        BatchSampler(_images(10), 11, seed=0)
