"""Fixtures shared by the test files."""

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest
import torch


def shared_mnist_dir() -> Path:
    """The MNIST test split beside the checkout (../shared/data/mnist), or $EQUILIBRIA_MNIST_DIR."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
    return Path(os.environ.get("EQUILIBRIA_MNIST_DIR") or default)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def served(tmp_path, request):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; returns (www, base URL without a slash)."""
    www = tmp_path / "www"
    www.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    request.addfinalizer(stop)
    return www, f"http://127.0.0.1:{server.server_address[1]}"


class CyclingBatches:
    """Real batches for trainer tests: ``count`` fixed random batches of ``shape``, cycled; resumable."""

    def __init__(self, shape=(8, 2), count=4, seed=7):
        g = torch.Generator().manual_seed(seed)
        self.data = [torch.randn(*shape, generator=g) for _ in range(count)]
        self.i = 0

    def next(self):
        self.i += 1
        return self.data[(self.i - 1) % len(self.data)]

    def state_dict(self):
        return {"i": self.i}

    def load_state_dict(self, state):
        self.i = state["i"]


def record_adversary_batches(trainer) -> dict:
    """Wrap ``trainer.adversary_loss`` so that the dict returned holds the last real and (detached)
    generated batch it was called with, e.g. the batches AdvAs computed r on."""
    seen = {}
    adversary_loss = trainer.adversary_loss

    def spy(real, fake, *args, **kwargs):
        seen.update(real=real, fake=fake.detach())
        return adversary_loss(real, fake, *args, **kwargs)

    trainer.adversary_loss = spy
    return seen


def celeba_folder(root: Path, n: int = 8) -> Path:
    """A folder shaped as CelebA's: ``n`` random 178 x 218 JPEG files and the partition file (the last
    two images in the test part)."""
    from PIL import Image

    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for i in range(1, n + 1):
        pixels = torch.randint(0, 256, (218, 178, 3), dtype=torch.uint8, generator=generator)
        Image.fromarray(pixels.numpy()).save(folder / f"{i:06d}.jpg")
    (root / "list_eval_partition.txt").write_text("".join(f"{i:06d}.jpg {0 if i <= n - 2 else 2}\n"
                                                          for i in range(1, n + 1)))
    return root


def cifar_folder(root: Path, n: int = 8) -> Path:
    """CIFAR-10's python batches (``cifar-10-batches-py``) with ``n`` random images each."""
    import pickle

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = torch.randint(0, 256, (n, 3072), dtype=torch.uint8, generator=generator).numpy()
        with open(folder / name, "wb") as handle:
            pickle.dump({b"labels": [i % 10 for i in range(n)], b"data": data}, handle)
    return root
