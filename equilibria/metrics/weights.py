"""Where the FID Inception weights come from: a local file, or a download checked like torch.hub's.

The file is pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (the TF FID graph's weights as a
state dict). Its path is, in order: the ``path`` argument, ``$EQUILIBRIA_FID_WEIGHTS``, else
``<cache>/pt_inception-2015-12-05-6726825d.pth`` with ``<cache>`` = ``$EQUILIBRIA_CACHE`` or
``~/.cache/equilibria``. A download is accepted only when the file's whole SHA-256 equals the
published one (``FID_WEIGHTS_SHA256``; its first 8 hex digits are the ``6726825d`` of the name).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from equilibria.data.download import download_verified
from equilibria.files import CACHE_ENV, cache_dir
from equilibria.metrics.inception import FIDInceptionV3

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URLS = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME,
)
WEIGHTS_ENV = "EQUILIBRIA_FID_WEIGHTS"
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"


def fid_weights_path(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$EQUILIBRIA_FID_WEIGHTS``, else the weights file in :func:`cache_dir`."""
    if path is not None:
        return Path(path)
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    return cache_dir() / FID_WEIGHTS_NAME


def download_fid_weights(dest: str | os.PathLike, urls: Sequence[str] = FID_WEIGHTS_URLS,
                         sha256: str = FID_WEIGHTS_SHA256, timeout: float = 60, progress: bool = True) -> Path:
    """Fetch ``dest`` from the first of ``urls`` whose whole SHA-256 equals ``sha256``.

    Each attempt streams into a temporary file next to ``dest``, moved into place only when the
    hash matches and deleted otherwise. Raises DownloadError listing every URL tried.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"sha256: got {sha256!r}; allowed: the 64 hex digits of a SHA-256 digest")
    return download_verified(urls, Path(dest), sha256, timeout, progress, algorithm="sha256")


def load_fid_inception(path: str | os.PathLike | None = None, download: bool = False,
                       urls: Sequence[str] = FID_WEIGHTS_URLS, sha256: str = FID_WEIGHTS_SHA256,
                       progress: bool = True) -> FIDInceptionV3:
    """The FID Inception in eval mode, without gradients, with every weight of the file loaded.

    The file is found by :func:`fid_weights_path`; when it is absent, ``download=True`` fetches it
    there (:func:`download_fid_weights`), otherwise a FileNotFoundError says how to provide it.
    Loaded with ``torch.load(weights_only=True)`` and ``load_state_dict(strict=True)``: a missing
    or an unexpected name, or a wrong shape, is refused.
    """
    file = fid_weights_path(path)
    if not file.is_file():
        if not download:
            raise FileNotFoundError(
                f"FID Inception weights not found at {file}. Provide the file {FID_WEIGHTS_NAME} by the "
                f"path option or the environment variable {WEIGHTS_ENV}, put it in the cache directory "
                f"(${CACHE_ENV} or ~/.cache/equilibria), or download it with download=True (needs "
                f"internet) from {FID_WEIGHTS_URLS[0]}")
        download_fid_weights(file, urls, sha256, progress=progress)
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{file}: not a state dict (got {type(state).__name__}); expected the FID "
                         f"Inception weights file {FID_WEIGHTS_NAME}")
    network = FIDInceptionV3()
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{file}: not the FID Inception's weights: {error}") from error
    return network.eval().requires_grad_(False)
