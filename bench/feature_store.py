"""Feature store: write / epoch-read MB/s and bytes on disk of bcolz vs np.memmap vs np.save/np.load,
and the share of a head-training epoch spent waiting on store reads.

Data: a 20,000 × 512 float32 array of ReLU(N(0, 1)) features (about half zeros, like pooled
post-ReLU CNN features). bcolz and memmap go through ``dlpipe.io.arrays`` (create_store /
open_store, the project's defaults: chunk_rows 1024, lz4 clevel 5, blosc noshuffle);
"bcolz shuffle" is the same with blosc's byte shuffle (the default before issue #8);
np.save/np.load are raw numpy. "Cold" reads first evict the files from the page cache
(posix_fadvise DONTNEED after fsync); "warm" reads are a second pass.

I/O share (issue #8): a Linear(512, 10) head trains (forward + backward + Adam step per batch)
on ``ChunkedFeatureLoader`` batches (bs 64, shuffled chunks, warm cache); the share is the time
the training loop spends inside the loader's ``next()`` ÷ the epoch's wall time, for the
default loader (a background thread prefetches buffers) and with ``prefetch=0`` (reads in the
training thread), at 1 and 2 torch threads. The same loop over the same batches held in RAM
gives the epoch time with no store at all. Epochs alternate between the three, after a warm-up.
Worker use: python -m bench.feature_store   (one JSON line: every backend's numbers)
"""
from __future__ import annotations

import importlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import PROJECT_PY, RAW, fmt_stat, run_worker, summarize, target

ROWS, COLS, BS = 20_000, 512, 64
THREADS = (1, 2)                      # torch threads for the I/O-share epochs
EPOCHS = 5                            # timed epochs per loader mode and thread count (after a warm-up)
MODES = ("prefetch", "no_prefetch", "in_ram")
CASES = {"bcolz": ("bcolz", {}), "bcolz shuffle": ("bcolz", {"shuffle": "shuffle"}), "memmap": ("memmap", {})}


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


def _store_case(case: str, x: np.ndarray, labels: np.ndarray, root: Path) -> dict:
    from dlpipe.io.arrays import create_store, dir_nbytes, open_store
    backend, kw = CASES[case]
    path = root / case.replace(" ", "_")

    def write():
        with create_store(path, (COLS,), "float32", backend=backend, meta={"expected_rows": ROWS}, **kw) as w:
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
    """Per torch thread count and loader mode: median epoch seconds and seconds waiting in ``next()``."""
    import torch
    from dlpipe.vision.feature_data import ChunkedFeatureLoader
    out = {}
    for threads in THREADS:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        head = torch.nn.Linear(COLS, 10)
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        loaders = {"prefetch": ChunkedFeatureLoader(reader, labels, bs=BS, shuffle=True, seed=0),
                   "no_prefetch": ChunkedFeatureLoader(reader, labels, bs=BS, shuffle=True, seed=0, prefetch=0)}
        loaders["in_ram"] = list(loaders["no_prefetch"])

        def train_epoch(batches) -> tuple[float, float]:
            wait, it = 0.0, iter(batches)
            t0 = time.perf_counter()
            while True:
                t = time.perf_counter()
                try:
                    xb, yb = next(it)
                except StopIteration:
                    break
                wait += time.perf_counter() - t
                opt.zero_grad()
                torch.nn.functional.cross_entropy(head(xb), yb).backward()
                opt.step()
            return time.perf_counter() - t0, wait
        for mode in MODES:                # warm-up: page cache, allocator, Adam state, the thread pool
            train_epoch(loaders[mode])
        runs = {mode: [] for mode in MODES}
        for _ in range(EPOCHS):          # alternate, so the modes see the same machine load
            for mode in MODES:
                runs[mode].append(train_epoch(loaders[mode]))
        out[f"threads_{threads}"] = {mode: {"epoch_s": float(np.median([e for e, _ in r])),
                                            "wait_s": float(np.median([w for _, w in r])),
                                            "wait_share": float(np.median([w / e for e, w in r]))}
                                     for mode, r in runs.items()}
    return {"io": out, "loadavg_after": os.getloadavg()[0]}


def worker() -> None:
    importlib.import_module("bcolz")   # now, so the first bcolz write does not time the import
    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((ROWS, COLS), dtype=np.float32), 0)  # (rows, 512) post-ReLU
    labels = rng.integers(0, 10, ROWS)
    RAW.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=RAW) as tmp:  # on the repo's disk, like data/
        load_start = os.getloadavg()[0]
        out = {case: _store_case(case, x, labels, Path(tmp)) for case in CASES}
        out["np.save"] = _npy_case(x, Path(tmp))
    out["zero_frac"] = float((x == 0).mean())
    out["loadavg"] = [load_start, *(out[c]["loadavg_after"] for c in CASES)]
    print(json.dumps(out), flush=True)


def _pct(stat: dict) -> str:
    return fmt_stat(stat, lambda v: f"{v:.1%}")


def _sec(stat: dict) -> str:
    return fmt_stat(stat, lambda v: f"{v:.2f}")


def run(peer_py, runs: int, quick: bool) -> dict:
    res = [run_worker([PROJECT_PY, "-m", "bench.feature_store"], RAW / "logs" / f"fstore_{r}.log") for r in range(runs)]
    mb = ROWS * COLS * 4 / 1e6
    rows, io_rows, targets, measured = [], [], [], {}
    for b in (*CASES, "np.save"):
        st = {k: summarize([mb / r[b][k] for r in res]) for k in ("write_s", "cold_read_s", "warm_read_s")}
        disk = res[0][b]["disk_bytes"]
        measured[b] = {**st, "disk_bytes": disk}
        rows.append([b, fmt_stat(st["write_s"]), fmt_stat(st["cold_read_s"]), fmt_stat(st["warm_read_s"]),
                     f"{disk / 2**20:.1f} MiB", f"{disk / (mb * 1e6):.2f}"])
        if "io" not in res[0][b]:
            continue
        measured[b]["io"] = {}
        for th in THREADS:
            key = f"threads_{th}"
            m = {mode: {k: summarize([r[b]["io"][key][mode][k] for r in res]) for k in ("epoch_s", "wait_share")}
                 for mode in MODES}
            measured[b]["io"][key] = m
            io_rows.append([b, th, _pct(m["prefetch"]["wait_share"]), _pct(m["no_prefetch"]["wait_share"]),
                            _sec(m["prefetch"]["epoch_s"]), _sec(m["no_prefetch"]["epoch_s"]),
                            _sec(m["in_ram"]["epoch_s"])])
            targets.append(target(f"I/O share of a head epoch, {b}, {th} thread{'s' * (th > 1)} (prefetch)",
                                  m["prefetch"]["wait_share"]["median"], "<=", 0.10))
    loads = [v for r in res for v in r["loadavg"]]
    return {"title": "5. Feature store (20k × 512 float32, post-ReLU)", "measured": measured, "raw_runs": res,
            "notes": [f"{mb:.0f} MB uncompressed; {res[0]['zero_frac']:.0%} zeros. MB/s = uncompressed MB / seconds.",
                      "bcolz and memmap through `dlpipe.io.arrays` (write = create_store + append 1,024-row batches + "
                      "close; read = `iter_chunks()` over every row): bcolz with the defaults (lz4 clevel 5, blosc "
                      "noshuffle), `bcolz shuffle` with blosc's byte shuffle (the default before issue #8); "
                      "np.save/np.load are raw numpy.",
                      "cold = after evicting the files from the page cache (fsync + posix_fadvise DONTNEED); "
                      "warm = the next pass.",
                      f"I/O share = seconds the training loop spends in the loader's `next()` ÷ epoch seconds, "
                      f"Linear(512, 10) fwd/bwd/Adam on `ChunkedFeatureLoader` batches (bs {BS}, shuffled chunks, "
                      f"warm cache); prefetch = the default loader (a background thread reads ahead up to 2 "
                      f"buffers), no prefetch = `prefetch=0`; in RAM = the same batches from a list (no store). "
                      f"Medians of {EPOCHS} alternating epochs per worker, after a warm-up epoch of each.",
                      f"1-min load average during the workers (start and after each case): "
                      f"{min(loads):.1f}–{max(loads):.1f} on {os.cpu_count()} cores; the I/O-share loop competes "
                      f"with that load for CPU, so a busy machine raises the shares.",
                      f"{runs} run(s), each a fresh process."],
            "tables": [{"caption": "MB/s and size", "headers": ["backend", "write MB/s", "cold read MB/s",
                                                               "warm read MB/s", "on disk", "disk/raw"],
                        "rows": rows},
                       {"caption": "Share of a head-training epoch spent waiting on the store",
                        "headers": ["backend", "torch threads", "I/O share, prefetch", "I/O share, no prefetch",
                                    "epoch s, prefetch", "epoch s, no prefetch", "epoch s, batches in RAM"],
                        "rows": io_rows}],
            "targets": targets}


if __name__ == "__main__":
    worker()
