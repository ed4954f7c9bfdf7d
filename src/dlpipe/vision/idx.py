"""Parse the official MNIST IDX files (gzip or raw) with a checked big-endian header.

IDX layout (http://yann.lecun.com/exdb/mnist/)::

    bytes 0-3   magic: 0x00 0x00 <dtype code> <ndim>     0x00000803 images, 0x00000801 labels
    4*ndim      dimension sizes, big-endian uint32         (n, 28, 28) or (n,)
    rest        n * prod(dims[1:]) payload items, C order  (dtype 0x08 = uint8)
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from dlpipe.core.errors import DataError

IMAGES_MAGIC = 0x00000803   # uint8, 3 dims
LABELS_MAGIC = 0x00000801   # uint8, 1 dim
_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
           0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: IDX file not found") from None
    except (OSError, EOFError) as e:   # truncated gzip stream, bad CRC
        raise DataError(f"{path}: not a readable gzip IDX file ({e})") from None


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read one IDX file into a numpy array (native byte order).

    Args:
        magic: the expected magic number, e.g. ``IMAGES_MAGIC``; None accepts any valid one.
    Raises:
        DataError naming the file: wrong magic, unknown dtype, short header or payload.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX header: {len(raw)} bytes, expected at least 4")
    (got,) = struct.unpack(">I", raw[:4])
    if magic is not None and got != magic:
        raise DataError(f"{path}: IDX magic 0x{got:08X}, expected 0x{magic:08X} "
                        f"({'images' if magic == IMAGES_MAGIC else 'labels' if magic == LABELS_MAGIC else 'IDX'})")
    code, ndim = (got >> 8) & 0xFF, got & 0xFF
    if got >> 16 or code not in _DTYPES or ndim == 0:
        raise DataError(f"{path}: IDX magic 0x{got:08X} is not a valid IDX header")
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header: expected {ndim} dimension sizes")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = _DTYPES[code]
    need = int(np.prod(dims)) * dtype.itemsize
    payload = raw[4 + 4 * ndim:]
    if len(payload) != need:
        raise DataError(f"{path}: IDX payload is {len(payload):,} bytes, expected {need:,} "
                        f"for shape {dims} {dtype.name} ({'truncated' if len(payload) < need else 'trailing bytes'})")
    return np.frombuffer(payload, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def read_mnist(images: str | os.PathLike, labels: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """An images file and its labels file: ``(n, rows, cols)`` uint8 and ``(n,)`` int64, counts checked."""
    x = read_idx(images, IMAGES_MAGIC)
    y = read_idx(labels, LABELS_MAGIC)
    if len(x) != len(y):
        raise DataError(f"{images}: {len(x)} images but {labels} has {len(y)} labels; expected equal counts")
    if y.size and y.max() > 9:
        raise DataError(f"{labels}: label {int(y.max())} out of range, expected digits 0-9")
    return x, y.astype(np.int64)
