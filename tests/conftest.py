"""Fixtures shared by the test files."""

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest


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
