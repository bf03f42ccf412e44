"""Checksum-verified downloads that never leave a partial file behind."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.request import urlopen

from tqdm import tqdm

_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """No URL gave a file with the expected checksum."""


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_verified(urls: Sequence[str], dest: Path, expected: str, timeout: float = 60,
                      progress: bool = True, algorithm: str = "md5") -> Path:
    """Fetch ``dest`` from the first of ``urls`` whose content's whole hex digest equals ``expected``.

    Each attempt streams into a temporary file next to ``dest`` that is moved into
    place only when the checksum matches, and deleted otherwise (also on errors and
    KeyboardInterrupt). Raises DownloadError listing every URL tried when none works.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            got = _fetch(url, dest, expected, timeout, progress, algorithm)
        except (OSError, http.client.HTTPException) as error:  # URLError, HTTPError, timeouts
            failures.append(f"{url}: {error}")
            continue
        if got == expected:
            return dest
        failures.append(f"{url}: got {algorithm} {got}")
    tried = "\n  ".join(failures) or "(no URLs given)"
    raise DownloadError(f"could not download {dest.name} to {dest.parent}: expected {algorithm} "
                        f"{expected}; tried:\n  {tried}")


def _fetch(url: str, dest: Path, expected: str, timeout: float, progress: bool, algorithm: str) -> str:
    """Stream ``url`` to a temp file; move it onto ``dest`` if its digest equals ``expected``."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    tmp = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part",
                                      delete=False)
    try:
        with tmp, urlopen(url, timeout=timeout) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, desc=dest.name, leave=False,
                      disable=not progress) as bar:
                while chunk := response.read(_CHUNK):
                    tmp.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() == expected:
            os.replace(tmp.name, dest)
        return digest.hexdigest()
    finally:
        Path(tmp.name).unlink(missing_ok=True)
