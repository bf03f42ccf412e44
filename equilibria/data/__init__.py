"""In-memory datasets, loaders and the reproducible minibatch sampler."""

from .dataset import Dataset
from .download import DownloadError
from .info import describe
from .mnist import download_mnist, read_idx
from .registry import DATASETS, ON_DISK, POINT_DATASETS, data_root, load_dataset
from .sampler import BatchSampler

__all__ = [
    "DATASETS",
    "ON_DISK",
    "POINT_DATASETS",
    "BatchSampler",
    "Dataset",
    "DownloadError",
    "data_root",
    "describe",
    "download_mnist",
    "load_dataset",
    "read_idx",
]
