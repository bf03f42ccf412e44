import gzip
import struct

import numpy as np
import pytest
import torch

from equilibria.data import read_idx


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


IMAGES = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)


@pytest.mark.parametrize("compress, name", [(False, "images-idx3-ubyte"), (True, "images-idx3-ubyte.gz"),
                                            (True, "gzipped-without-extension")])
def test_read_uint8_raw_and_gzip(tmp_path, compress, name):
    raw = _idx_bytes(IMAGES, 0x08)
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if compress else raw)
    out = read_idx(path)
    assert out.dtype == torch.uint8
    assert out.numpy().tolist() == IMAGES.tolist()


def test_read_big_endian_int32(tmp_path):
    values = np.array([1, -2, 70000], dtype=">i4")
    path = tmp_path / "ints"
    path.write_bytes(_idx_bytes(values, 0x0C))
    out = read_idx(path)
    assert out.dtype == torch.int32 and out.tolist() == [1, -2, 70000]


def test_bad_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match=r"bad.*not an IDX file"):
        read_idx(path)


def test_unknown_type_code(tmp_path):
    path = tmp_path / "code"
    path.write_bytes(_idx_bytes(IMAGES, 0x07))
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        read_idx(path)


def test_truncated_payload(tmp_path):
    path = tmp_path / "short-idx3-ubyte"
    path.write_bytes(_idx_bytes(IMAGES, 0x08)[:-1])
    with pytest.raises(ValueError, match=r"short-idx3-ubyte: IDX payload is 23 bytes .*need 24"):
        read_idx(path)


def test_truncated_header_and_gzip(tmp_path):
    header = tmp_path / "header"
    header.write_bytes(_idx_bytes(IMAGES, 0x08)[:9])
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(header)
    gz = tmp_path / "cut.gz"
    gz.write_bytes(gzip.compress(_idx_bytes(IMAGES, 0x08))[:-6])
    with pytest.raises(ValueError, match="cut.gz: corrupt gzip data"):
        read_idx(gz)
