import hashlib
import os
import shutil
from pathlib import Path

import pytest
from conftest import shared_mnist_dir

from equilibria.data import DownloadError, download_mnist
from equilibria.data import download as download_module
from equilibria.data.download import download_verified

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _shared() -> tuple[Path, dict[str, str]]:
    """The shared MNIST directory and the md5 of each test-split file (from MD5SUMS if present)."""
    directory = shared_mnist_dir()
    if not all((directory / name).is_file() for name in TEST_FILES):
        pytest.skip(f"MNIST test split not found at {directory}: set EQUILIBRIA_MNIST_DIR")
    sums = directory / "MD5SUMS"
    listed = (dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
              if sums.is_file() else {name: _md5(directory / name) for name in TEST_FILES})
    return directory, listed


def _publish(www: Path, sub: str, source: Path, corrupt: bool = False) -> None:
    folder = www / sub
    folder.mkdir()
    for name in TEST_FILES:
        shutil.copy(source / name, folder / name)
    if corrupt:
        data = bytearray((folder / TEST_FILES[0]).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / TEST_FILES[0]).write_bytes(bytes(data))


def test_download_test_split(served, tmp_path):
    source, md5s = _shared()
    www, base = served
    _publish(www, "good", source)
    dest = tmp_path / "dest"
    paths = download_mnist(dest, splits=("test",), mirrors=[f"{base}/good/"], timeout=10, progress=False)
    assert [p.name for p in paths] == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert sorted(os.listdir(dest)) == sorted(TEST_FILES)
    for name in TEST_FILES:
        assert _md5(dest / name) == md5s[name]
    # A present file with a wrong md5 is fetched again; a good one is kept (no server needed).
    (dest / TEST_FILES[1]).write_bytes(b"stale")
    download_mnist(dest, splits=("test",), mirrors=[f"{base}/good"], timeout=10, progress=False)
    assert _md5(dest / TEST_FILES[1]) == md5s[TEST_FILES[1]]
    download_mnist(dest, splits=("test",), mirrors=["http://127.0.0.1:9/unreachable/"], timeout=1,
                   progress=False)


def test_corrupt_download_leaves_nothing(served, tmp_path):
    source, md5s = _shared()
    www, base = served
    _publish(www, "bad", source, corrupt=True)
    corrupt_md5 = _md5(www / "bad" / TEST_FILES[0])
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as info:
        download_mnist(dest, splits=("test",), mirrors=[f"{base}/bad/"], timeout=10, progress=False)
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert TEST_FILES[0] in message and md5s[TEST_FILES[0]] in message and corrupt_md5 in message
    assert f"{base}/bad/{TEST_FILES[0]}" in message
    assert os.listdir(dest) == []


def test_falls_back_to_next_mirror(served, tmp_path):
    source, md5s = _shared()
    www, base = served
    _publish(www, "bad", source, corrupt=True)
    _publish(www, "good", source)
    for first in (f"{base}/missing/", f"{base}/bad/"):  # a 404 mirror, a corrupt mirror
        dest = tmp_path / first.rstrip("/").rsplit("/", 1)[-1]
        download_mnist(dest, splits=("test",), mirrors=[first, f"{base}/good/"], timeout=10,
                       progress=False)
        assert sorted(os.listdir(dest)) == sorted(TEST_FILES)
        assert all(_md5(dest / name) == md5s[name] for name in TEST_FILES)


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    class Interrupting:
        headers = {"Content-Length": "100"}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, size):
            raise KeyboardInterrupt

    monkeypatch.setattr(download_module, "urlopen", lambda url, timeout: Interrupting())
    with pytest.raises(KeyboardInterrupt):
        download_verified(["http://127.0.0.1/x"], tmp_path / "x.gz", "0" * 32, progress=False)
    assert os.listdir(tmp_path) == []


def test_unknown_split():
    with pytest.raises(ValueError, match="splits: unknown split 'val'; allowed: train, test"):
        download_mnist("unused", splits=("val",))
