"""scikit-learn's bundled 8x8 handwritten digits."""

from __future__ import annotations

import numpy as np
import torch

from .dataset import Dataset


def load_digits() -> Dataset:
    """The 1797 digits as uint8 ``(N, 1, 8, 8)``, values 0..16 rescaled to 0..255."""
    from sklearn.datasets import load_digits as sklearn_digits  # imported here: scikit-learn takes ~2 s to import

    bunch = sklearn_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)
    data = torch.from_numpy(images).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return Dataset("digits", data, labels, "image", num_modes=10)
