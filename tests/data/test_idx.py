"""idx files (MNIST's format): read back exactly, and a wrong or cut file is named with what is wrong."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from app.data.idx import read_idx, write_idx


def test_read_idx_hand_made(tmp_path: Path) -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 4) + arr.tobytes())
    got = read_idx(p)
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, arr)

    plain = tmp_path / "y-idx1"
    plain.write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">2i", 7, -5))
    got = read_idx(plain)
    assert got.dtype == np.int32 and got.tolist() == [7, -5]


def test_write_idx_round_trip(tmp_path: Path) -> None:
    for arr in (np.arange(6, dtype=np.uint8), np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)):
        np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.gz", arr)), arr)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (bytes([0x1F, 0x00, 0x08, 1]) + struct.pack(">I", 1) + b"\x00", "magic number"),
        (bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00", "magic number"),
        (bytes([0, 0, 0x08, 1]) + struct.pack(">I", 5) + b"\x00", "truncated"),
        (bytes([0, 0, 0x08, 2]) + b"\x00\x00", "truncated idx header"),
        (b"\x00", "too short"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path: Path, payload: bytes, match: str) -> None:
    p = tmp_path / "bad.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(payload)
    with pytest.raises(ValueError, match=match):
        read_idx(p)


def test_read_idx_corrupt_gzip_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "cut.gz"
    data = gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 1000) + bytes(1000))
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(p)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")
