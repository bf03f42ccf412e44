"""Where the FID Inception weights come from: a local file, or a download checked like torch.hub's.

The file is pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (the TF FID graph's weights as a
state dict). Its path is, in order: the ``path`` argument, ``$EQUILIBRIA_FID_WEIGHTS``, else
``<cache>/pt_inception-2015-12-05-6726825d.pth`` with ``<cache>`` = ``$EQUILIBRIA_CACHE`` or
``~/.cache/equilibria``. A download is accepted only when the sha256 hex digest of the file starts
with the hash in its name (``6726825d``), as ``torch.hub``'s ``check_hash`` does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from equilibria.data.download import download_verified
from equilibria.metrics.inception import FIDInceptionV3

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URLS = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME,
)
WEIGHTS_ENV = "EQUILIBRIA_FID_WEIGHTS"
CACHE_ENV = "EQUILIBRIA_CACHE"
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.")


def cache_dir() -> Path:
    """``$EQUILIBRIA_CACHE``, else ``~/.cache/equilibria``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "equilibria")


def fid_weights_path(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$EQUILIBRIA_FID_WEIGHTS``, else the weights file in :func:`cache_dir`."""
    if path is not None:
        return Path(path)
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    return cache_dir() / FID_WEIGHTS_NAME


def download_fid_weights(dest: str | os.PathLike, urls: Sequence[str] = FID_WEIGHTS_URLS,
                         timeout: float = 60, progress: bool = True) -> Path:
    """Fetch ``dest`` from the first of ``urls`` whose sha256 starts with the hash in ``dest``'s name.

    Each attempt streams into a temporary file next to ``dest``, moved into place only when the
    hash matches and deleted otherwise. Raises DownloadError listing every URL tried.
    """
    dest = Path(dest)
    match = _HASH_IN_NAME.search(dest.name)
    if match is None:
        raise ValueError(f"download: cannot check {dest.name!r}: the file name must carry the start of "
                         f"its sha256 as '-<hex>.' (like {FID_WEIGHTS_NAME})")
    return download_verified(urls, dest, match.group(1), timeout, progress, algorithm="sha256")


def load_fid_inception(path: str | os.PathLike | None = None, download: bool = False,
                       urls: Sequence[str] = FID_WEIGHTS_URLS, progress: bool = True) -> FIDInceptionV3:
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
        download_fid_weights(file, urls, progress=progress)
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
