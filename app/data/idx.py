"""The idx file format of MNIST: a header of a type code and dimensions, then big-endian values.

``read_idx`` validates the header against the payload, so a truncated download or a wrong file fails
with a message naming the file instead of a strange reshape error later. ``write_idx`` writes the
gzip form (test fixtures and small exports).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "write_idx"]

# idx type code -> big-endian numpy dtype
IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an idx file (gzip-compressed or plain), as used by MNIST.

    The header is validated (two zero bytes, a known type code, the number of
    dimensions, and a payload of exactly the announced size) so that a truncated
    download or a wrong file fails here with a clear message rather than as a
    strange reshape error later.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: not an idx file, truncated, or corrupt gzip.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(2)
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: file not found") from None
    try:
        if head == b"\x1f\x8b":
            with gzip.open(p, "rb") as fh:
                data = fh.read()
        else:
            data = p.read_bytes()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{p}: corrupt or truncated gzip file ({exc})") from None

    if len(data) < 4:
        raise ValueError(f"{p}: too short to be an idx file ({len(data)} bytes)")
    zero, code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in IDX_DTYPES:
        raise ValueError(
            f"{p}: not an idx file (magic number 0x{data[:4].hex()}; expected 0x0000TTNN with type "
            f"TT in {', '.join(f'{c:02x}' for c in IDX_DTYPES)})"
        )
    if ndim == 0:
        raise ValueError(f"{p}: idx file with zero dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"{p}: truncated idx header")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = np.dtype(IDX_DTYPES[code])
    expected = math.prod(shape) * dtype.itemsize
    payload = len(data) - header_len
    if payload != expected:
        raise ValueError(
            f"{p}: idx payload is {payload} bytes but the header {tuple(shape)} announces {expected} "
            "(truncated or corrupt file)"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as a gzip idx file (used for test fixtures and small exports)."""
    arr = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    native = arr.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"idx cannot store dtype {arr.dtype}")
    code = codes[native]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = arr.astype(IDX_DTYPES[code], copy=False).tobytes()
    p = Path(path)
    with gzip.open(p, "wb") as fh:
        fh.write(header + body)
    return p
