"""Feature store: write / epoch-read MB/s and bytes on disk of bcolz vs np.memmap vs np.save/np.load,
and the share of a head-training epoch spent waiting on store reads.

Data: a 20,000 × 512 float32 array of ReLU(N(0, 1)) features (about half zeros, like pooled
post-ReLU CNN features). bcolz and memmap go through ``dlpipe.io.arrays`` (create_store /
open_store, the project's defaults: chunk_rows 1024, lz4 clevel 5); np.save/np.load are raw numpy.
"Cold" reads first evict the files from the page cache (posix_fadvise DONTNEED after fsync);
"warm" reads are a second pass. The I/O share times ``ChunkedFeatureLoader`` epochs (bs 64,
shuffled) with and without a Linear(512, 10) forward + backward + Adam step per batch.
Worker use: python -m bench.feature_store   (one JSON line: every backend's numbers)
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import PROJECT_PY, RAW, fmt_stat, human, run_worker, summarize, target

ROWS, COLS, BS = 20_000, 512, 64


def _evict(path: Path) -> None:
    """Drop ``path``'s files from the page cache so the next read comes from disk."""
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _store_case(backend: str, x: np.ndarray, labels: np.ndarray, root: Path) -> dict:
    from dlpipe.io.arrays import create_store, dir_nbytes, open_store
    path = root / backend

    def write():
        with create_store(path, (COLS,), "float32", backend=backend, meta={"expected_rows": ROWS}) as w:
            for s in range(0, ROWS, 1024):
                w.append(x[s:s + 1024])
            w.add_array("labels", labels)

    def read():
        for _ in open_store(path).iter_chunks():
            pass
    w_s = _timed(write)
    _evict(path)
    return {"write_s": w_s, "cold_read_s": _timed(read), "warm_read_s": _timed(read),
            "disk_bytes": dir_nbytes(path), **_io_share(open_store(path), labels)}


def _npy_case(x: np.ndarray, root: Path) -> dict:
    path = root / "x.npy"
    w_s = _timed(lambda: np.save(path, x))
    _evict(path)
    return {"write_s": w_s, "cold_read_s": _timed(lambda: np.load(path)),
            "warm_read_s": _timed(lambda: np.load(path)), "disk_bytes": path.stat().st_size}


def _io_share(reader, labels: np.ndarray) -> dict:
    """Epoch seconds of the loader alone vs loader + linear head training (warm cache)."""
    import torch
    from dlpipe.vision.feature_data import ChunkedFeatureLoader
    torch.set_num_threads(2)
    torch.manual_seed(0)
    dl = ChunkedFeatureLoader(reader, labels, bs=BS, shuffle=True, seed=0)
    head = torch.nn.Linear(COLS, 10)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)

    def read_epoch():
        for _ in dl:
            pass

    def train_epoch():
        for xb, yb in dl:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(head(xb), yb).backward()
            opt.step()
    train_epoch()  # warm-up: page cache, allocator, Adam state
    return {"epoch_read_s": _timed(read_epoch), "epoch_train_s": _timed(train_epoch)}


def worker() -> None:
    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((ROWS, COLS), dtype=np.float32), 0)  # (rows, 512) post-ReLU
    labels = rng.integers(0, 10, ROWS)
    RAW.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=RAW) as tmp:  # on the repo's disk, like data/
        out = {b: _store_case(b, x, labels, Path(tmp)) for b in ("bcolz", "memmap")}
        out["np.save"] = _npy_case(x, Path(tmp))
    out["zero_frac"] = float((x == 0).mean())
    print(json.dumps(out), flush=True)


def run(peer_py, runs: int, quick: bool) -> dict:
    res = [run_worker([PROJECT_PY, "-m", "bench.feature_store"], RAW / "logs" / f"fstore_{r}.log") for r in range(runs)]
    mb = ROWS * COLS * 4 / 1e6
    rows, targets, measured = [], [], {}
    for b in ("bcolz", "memmap", "np.save"):
        st = {k: summarize([mb / r[b][k] for r in res]) for k in ("write_s", "cold_read_s", "warm_read_s")}
        disk = res[0][b]["disk_bytes"]
        share = None
        if "epoch_read_s" in res[0][b]:
            share = summarize([r[b]["epoch_read_s"] / r[b]["epoch_train_s"] for r in res])
            targets.append(target(f"I/O share of a head epoch, {b}", share["median"], "<=", 0.10))
        measured[b] = {**st, "disk_bytes": disk, "io_share": share}
        rows.append([b, fmt_stat(st["write_s"]), fmt_stat(st["cold_read_s"]), fmt_stat(st["warm_read_s"]),
                     f"{disk / 2**20:.1f} MiB", f"{disk / (mb * 1e6):.2f}",
                     "–" if share is None else fmt_stat(share, lambda v: f"{v:.1%}")])
    return {"title": "5. Feature store (20k × 512 float32, post-ReLU)", "measured": measured, "raw_runs": res,
            "notes": [f"{mb:.0f} MB uncompressed; {res[0]['zero_frac']:.0%} zeros. MB/s = uncompressed MB / seconds.",
                      "bcolz and memmap through `dlpipe.io.arrays` (write = create_store + append 1,024-row batches + "
                      "close; read = `iter_chunks()` over every row); np.save/np.load are raw numpy.",
                      "cold = after evicting the files from the page cache (fsync + posix_fadvise DONTNEED); "
                      "warm = the next pass.",
                      f"I/O share = loader-only epoch ÷ loader + Linear(512, 10) fwd/bwd/Adam epoch "
                      f"(`ChunkedFeatureLoader`, bs {BS}, shuffled chunks, warm cache).",
                      f"{runs} run(s), each a fresh process."],
            "tables": [{"caption": "MB/s and size", "headers": ["backend", "write MB/s", "cold read MB/s",
                                                               "warm read MB/s", "on disk", "disk/raw",
                                                               "I/O share of head epoch"], "rows": rows}],
            "targets": targets}


if __name__ == "__main__":
    worker()
