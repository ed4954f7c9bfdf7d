"""Feature store: big row arrays on disk, streamed in and read back in chunks or random batches.

Two backends behind one small interface (2017 lesson 9: precompute once, read contiguous chunks)::

    w = create_store(path, row_shape=(512,), dtype="float32", backend="bcolz", chunk_rows=1024,
                     meta={"backbone_sha256": ..., "layer": "pool"})
    for batch in batches: w.append(batch)         # (n, *row_shape); never the whole array in RAM
    w.add_array("labels", labels)                 # small side arrays, same row order
    w.close()                                     # temp dir -> rename; meta.json written last
    r = open_store(path, expect={"backbone_sha256": ..., "layer": "pool"})
    len(r), r.shape, r.dtype, r.meta, r.backend, r.labels
    for chunk in r.iter_chunks(): ...             # contiguous chunks in row order
    r.read(np.array([5, 3, 99])); r.read(slice(0, 64))

Layout of a store directory::

    path/meta.json      written last: a directory without it never opens
    path/data/          bcolz carray rootdir           (backend "bcolz")
    path/data.bin       raw C-order rows, no header     (backend "memmap")
    path/<name>.npy     side arrays from add_array (labels.npy, order.npy)

bcolz output is byte-identical for the same rows whatever the append batch sizes, because
chunks are fixed at ``chunk_rows`` rows and blosc compresses each chunk independently.

Reading a bcolz chunk costs a blosc decompression, the bulk of a head-training loader's work
(issue #8). Blosc's byte shuffle is the expensive part of it in this bcolz build (the generic C
unshuffle, no SSE2/AVX2 kernel compiled in), so stores are written with ``shuffle="noshuffle"``
by default. Measured on this 2-core machine (lz4 clevel 5, 1,024-row chunks, ``read`` of every
chunk; CPU seconds, so the machine's other load matters less; blosc's 2 threads were no faster):

    data                                     shuffle     disk/raw   decode
    bench: 20,000 x 512 ReLU(N(0,1))         shuffle     0.865      0.54 GB/s
                                             noshuffle   0.740      1.01 GB/s
    mnist_sample pooled features 12,396x128  shuffle     0.890      0.58 GB/s
                                             noshuffle   1.000      4.3 GB/s   (blosc stores it raw)

The setting is recorded in meta.json (``compression.shuffle``); every chunk's blosc header
carries its own flags, so stores written either way read back the same.

bcolz decompresses while holding the GIL, so a prefetch thread (dlpipe.vision.feature_data)
stalls the training loop for the length of each decompression. Calling bcolz's bundled
``blosc_decompress_ctx`` through ctypes instead (GIL released) was measured too: on this loaded
2-core machine it made head-training epochs about 10% slower (each GIL hand-over costs the
training thread a scheduling delay), so reads go through bcolz.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np

from dlpipe.core.errors import DataError
from dlpipe.core.atomic import atomic_dir, atomic_path

BACKENDS = ("bcolz", "memmap")
SHUFFLES = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}     # blosc filter names -> codes
FORMAT = 1


def dir_nbytes(path: str | os.PathLike) -> int:
    """Bytes on disk of every file under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def check_free_space(path: str | os.PathLike, need: int, what: str = "output") -> None:
    """Fail before starting when the filesystem holding ``path`` has less than ``need`` bytes free."""
    probe = Path(path)
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need:
        raise DataError(f"{path}: not enough disk space for {what}: need {need / 2**20:,.1f} MiB, "
                        f"{free / 2**20:,.1f} MiB free on the filesystem of {probe}")


class StoreWriter:
    """Streams rows into a temporary sibling directory; :meth:`close` publishes it atomically."""

    def __init__(self, path, row_shape, dtype, backend, chunk_rows, meta, clevel, cname, shuffle="noshuffle"):
        if backend not in BACKENDS:
            raise ValueError(f"feature store backend: expected one of {list(BACKENDS)}, got {backend!r}")
        if shuffle not in SHUFFLES:
            raise ValueError(f"feature store shuffle: expected one of {list(SHUFFLES)}, got {shuffle!r}")
        self.path, self.backend = Path(path), backend
        self.row_shape, self.dtype = tuple(int(d) for d in row_shape), np.dtype(dtype)
        self.chunk_rows, self.n_rows = int(chunk_rows), 0
        self.meta = dict(meta or {})
        self.compression = {"cname": cname, "clevel": clevel, "shuffle": shuffle} if backend == "bcolz" else None
        self._ctx = atomic_dir(self.path)
        self.tmp = self._ctx.__enter__()
        self._arrays: dict[str, np.ndarray] = {}
        if backend == "bcolz":
            import bcolz
            self._carray = bcolz.carray(
                np.empty((0, *self.row_shape), self.dtype), rootdir=str(self.tmp / "data"), mode="w",
                cparams=bcolz.cparams(clevel=clevel, cname=cname, shuffle=SHUFFLES[shuffle]),
                chunklen=self.chunk_rows,
                expectedlen=self.meta.get("expected_rows", self.chunk_rows))
        else:
            self._fh = open(self.tmp / "data.bin", "wb")

    def append(self, batch: np.ndarray) -> None:
        """Append rows ``batch`` of shape (n, *row_shape); the dtype must match exactly."""
        batch = np.asarray(batch)
        if batch.shape[1:] != self.row_shape or batch.dtype != self.dtype:
            raise DataError(f"{self.path}: append expected rows of shape (n, {', '.join(map(str, self.row_shape))}) "
                            f"{self.dtype}, got {batch.shape} {batch.dtype}")
        if self.backend == "bcolz":
            self._carray.append(batch)
        else:
            self._fh.write(np.ascontiguousarray(batch).tobytes())
        self.n_rows += len(batch)

    def add_array(self, name: str, arr: np.ndarray) -> None:
        """Store a small side array (``labels``, ``order``) with one entry per row, as ``name.npy``."""
        self._arrays[name] = np.asarray(arr)

    def close(self) -> None:
        """Flush, check side arrays, write meta.json last and rename the temp dir into place."""
        try:
            self._finish_data()
            for name, arr in self._arrays.items():
                if len(arr) != self.n_rows:
                    raise DataError(f"{self.path}: side array '{name}' has {len(arr)} entries, "
                                    f"expected one per row ({self.n_rows})")
                np.save(self.tmp / f"{name}.npy", arr, allow_pickle=False)
            meta = {**self.meta, "format": FORMAT, "backend": self.backend, "row_shape": list(self.row_shape),
                    "shape": [self.n_rows, *self.row_shape], "dtype": self.dtype.str, "n_rows": self.n_rows,
                    "chunk_rows": self.chunk_rows, "compression": self.compression,
                    "arrays": sorted(self._arrays)}
            (self.tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        except BaseException as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop everything written so far; ``path`` is left as it was."""
        try:
            self._finish_data()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _finish_data(self) -> None:
        if self.backend == "bcolz":
            self._carray.flush()
        elif not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def create_store(path: str | os.PathLike, row_shape: tuple, dtype, backend: str = "bcolz",
                 chunk_rows: int = 1024, meta: dict | None = None, clevel: int = 5,
                 cname: str = "lz4", shuffle: str = "noshuffle") -> StoreWriter:
    """Start writing a feature store at ``path`` (replaced on :meth:`StoreWriter.close`).

    Args:
        row_shape: shape of one row, e.g. ``(512,)`` or ``(128, 4, 4)``.
        backend: ``"bcolz"`` (compressed chunks) or ``"memmap"`` (raw file).
        chunk_rows: rows per bcolz chunk and per :meth:`StoreReader.iter_chunks` chunk.
        meta: provenance recorded in meta.json (backbone_sha256, layer, row order seed...);
            ``expected_rows`` sizes bcolz's internal buffers.
        clevel, cname: blosc compression (bcolz only).
        shuffle: blosc filter before compressing (bcolz only): ``"noshuffle"`` (default: the
            cheapest to decompress, see the module docstring), ``"shuffle"`` (bytes) or
            ``"bitshuffle"``.
    """
    return StoreWriter(path, row_shape, dtype, backend, chunk_rows, meta, clevel, cname, shuffle)


class StoreReader:
    """Read-only view of a finished store."""

    def __init__(self, path: Path, meta: dict):
        self.path, self.meta = path, meta
        self.backend = meta["backend"]
        self.dtype = np.dtype(meta["dtype"])
        self.shape = tuple(meta["shape"])
        self.chunk_rows = int(meta["chunk_rows"])
        if self.backend == "bcolz":
            import bcolz
            self._data = bcolz.open(str(path / "data"), mode="r")
        elif self.shape[0] == 0:
            self._data = np.empty(self.shape, self.dtype)
        else:
            self._data = np.memmap(path / "data.bin", dtype=self.dtype, mode="r", shape=self.shape)
        if tuple(self._data.shape) != self.shape:
            raise DataError(f"{path}: data holds shape {tuple(self._data.shape)}, meta.json says {self.shape}")

    def __len__(self) -> int:
        return self.shape[0]

    def iter_chunks(self, rows: int | None = None) -> Iterator[np.ndarray]:
        """Yield contiguous chunks of ``rows`` rows (default: the store's chunk_rows) in row order."""
        rows = rows or self.chunk_rows
        for start in range(0, len(self), rows):
            yield self.read(slice(start, start + rows))

    def read(self, idx) -> np.ndarray:
        """Rows at ``idx`` (int, slice or int array), as an in-RAM array."""
        if isinstance(idx, slice) and self.backend == "bcolz":
            return self._data[idx]        # bcolz decompresses a slice into a new array: no copy needed
        if isinstance(idx, (slice, int, np.integer)):
            return np.array(self._data[idx])
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"{self.path}: row index out of range for {len(self)} rows")
        return np.array(self._data[idx]) if idx.size else np.empty((0, *self.shape[1:]), self.dtype)

    def array(self, name: str) -> np.ndarray:
        """A side array stored with :meth:`StoreWriter.add_array`."""
        if name not in self.meta.get("arrays", []):
            raise DataError(f"{self.path}: no side array '{name}' (has: {self.meta.get('arrays', [])})")
        return np.load(self.path / f"{name}.npy", allow_pickle=False)

    @property
    def labels(self) -> np.ndarray | None:
        """Per-row labels, if the writer stored them."""
        return self.array("labels") if "labels" in self.meta.get("arrays", []) else None

    @property
    def nbytes(self) -> int:
        """Uncompressed size of the rows."""
        return int(np.prod(self.shape)) * self.dtype.itemsize

    @property
    def disk_nbytes(self) -> int:
        """Bytes on disk of the whole store directory."""
        return dir_nbytes(self.path)


def open_store(path: str | os.PathLike, expect: dict | None = None) -> StoreReader:
    """Open a finished store; ``expect`` fields must equal the recorded meta (else DataError).

    Args:
        expect: e.g. ``{"backbone_sha256": sha, "layer": "pool"}``: features computed with another
            backbone or layer are stale and must be recomputed.
    """
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise DataError(f"{path}: not a feature store (no meta.json): run precompute to build it")
    meta = json.loads(meta_file.read_text())
    for key, want in (expect or {}).items():
        have = meta.get(key)
        if have != want:
            raise DataError(_mismatch(path, key, have, want))
    return StoreReader(path, meta)


def _mismatch(path: Path, key: str, have, want) -> str:
    if key == "backbone_sha256":
        return (f"{path}: features in {path} were computed with backbone {have}, but the current "
                f"backbone is {want}: rerun precompute")
    return f"{path}: meta field '{key}' is {have!r}, expected {want!r}: rerun precompute"


def save_npy(dest: str | os.PathLike, arr: np.ndarray) -> None:
    """Atomically write one .npy file."""
    with atomic_path(dest, suffix=".npy") as tmp:
        np.save(tmp, arr, allow_pickle=False)
