"""IDX parser: the real MNIST files parse; wrong magic, truncation and mismatched counts fail clearly."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from dlpipe.core.errors import DataError
from dlpipe.vision.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_mnist

MNIST = Path(os.environ.get("DLPIPE_MIRROR", "/work/shared/data")) / "mnist"


def _idx(path, magic, dims, payload, gz=True):
    data = struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def _raw(path, data):
    path.write_bytes(data)
    return path


def test_real_t10k_files():
    x, y = read_mnist(MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz")
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((10000, 28, 28), np.uint8, (10000,), np.int64)
    assert set(np.unique(y)) == set(range(10))
    assert 20 < x.mean() < 50   # mostly black digits on 0-255


def test_real_train_labels():
    y = read_idx(MNIST / "train-labels-idx1-ubyte.gz", LABELS_MAGIC)
    assert y.shape == (60000,) and np.bincount(y).min() > 5000


@pytest.mark.parametrize("gz", [True, False])
def test_small_round_trip(tmp_path, gz):
    img = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    f = _idx(tmp_path / "x.idx", IMAGES_MAGIC, (2, 3, 4), img.tobytes(), gz=gz)
    np.testing.assert_array_equal(read_idx(f, IMAGES_MAGIC), img)


@pytest.mark.parametrize("make,needle", [
    (lambda p: _idx(p, LABELS_MAGIC, (2,), b"\x01\x02"), r"IDX magic 0x00000801, expected 0x00000803 \(images\)"),
    (lambda p: _idx(p, IMAGES_MAGIC, (2, 3, 4), bytes(23)), r"payload is 23 bytes, expected 24 .*truncated"),
    (lambda p: _idx(p, IMAGES_MAGIC, (2, 3, 4), bytes(25)), r"payload is 25 bytes, expected 24 .*trailing"),
    (lambda p: _raw(p, gzip.compress(b"\x00\x00")), "truncated IDX header: 2 bytes"),
    (lambda p: _raw(p, gzip.compress(struct.pack(">I", IMAGES_MAGIC) + bytes(100))[:-10]),
     "not a readable gzip IDX file"),
])
@pytest.mark.fault("Bad data", "IDX with wrong magic, truncated/trailing payload, short header, broken gzip: DataError naming the file")
def test_bad_files_name_the_file(tmp_path, make, needle):
    f = make(tmp_path / "bad-images.gz")
    with pytest.raises(DataError, match=needle) as err:
        read_idx(f, IMAGES_MAGIC)
    assert str(tmp_path / "bad-images.gz") in str(err.value)


@pytest.mark.fault("Bad data", "real MNIST labels file truncated: DataError with payload bytes found vs expected")
def test_truncated_real_file(tmp_path):
    raw = gzip.decompress((MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes())
    f = tmp_path / "labels.gz"
    f.write_bytes(gzip.compress(raw[:-100], mtime=0))
    with pytest.raises(DataError, match=r"labels.gz: IDX payload is 9,900 bytes, expected 10,000"):
        read_idx(f, LABELS_MAGIC)


@pytest.mark.fault("Bad data", "IDX images and labels of different lengths: DataError naming both counts")
def test_count_mismatch(tmp_path):
    x = _idx(tmp_path / "x.gz", IMAGES_MAGIC, (3, 2, 2), bytes(12))
    y = _idx(tmp_path / "y.gz", LABELS_MAGIC, (2,), bytes(2))
    with pytest.raises(DataError, match="3 images but .*y.gz has 2 labels"):
        read_mnist(x, y)
