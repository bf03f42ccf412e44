"""Stacked MNIST: three random digits as the R, G, B channels (1000 modes)."""

from __future__ import annotations

import torch

from .dataset import Dataset


def stacked_mnist(mnist: Dataset, n: int, seed: int) -> Dataset:
    """``n`` uint8 ``(3, H, W)`` images whose channels are independently drawn MNIST digits.

    The label is ``100 * d_R + 10 * d_G + d_B``.
    """
    if mnist.kind != "image" or mnist.data.shape[1] != 1 or mnist.labels is None:
        raise ValueError(f"stacked_mnist: needs a labelled single-channel image dataset, got "
                         f"{mnist.name!r} ({mnist.kind}, sample shape {mnist.sample_shape}, "
                         f"labels {'missing' if mnist.labels is None else 'present'})")
    if n < 1:
        raise ValueError(f"num_samples: must be >= 1 for stacked_mnist, got {n}")
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(len(mnist), (n, 3), generator=generator)
    data = mnist.data[:, 0][index]
    digits = mnist.labels[index]
    labels = 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]
    return Dataset("stacked_mnist", data, labels, "image", num_modes=1000)
