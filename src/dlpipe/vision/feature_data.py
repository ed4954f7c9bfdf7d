"""Batches from a feature store read as whole contiguous chunks: an epoch is sequential I/O.

2017 lesson 9: shuffling row by row makes the disk seek for every row; a store whose rows were
shuffled once when written can instead be read chunk by chunk, and only the ORDER of chunks and
the rows inside an in-RAM buffer are reshuffled each epoch::

    store rows   [c0 | c1 | c2 | c3 | c4]          chunks of chunk_rows contiguous rows
    epoch e      read c3 c0 c4 c1 c2               permutation from rng(seed, e)
    buffer       rows of buffer_chunks chunks (+ the previous buffer's leftover), shuffled
    batches      bs rows at a time; the leftover (< bs rows) carries into the next buffer

Every row comes out exactly once per epoch, and the order is a pure function of (seed, epoch).
``bs`` is the global batch: under DDP with W processes every rank reads the same chunks and keeps
rows r, r+W, ... of each batch, so the ranks together train on exactly the single-process batch.

Prefetch (issue #8): reading a chunk means decompressing it (bcolz/blosc), work that used to
stall the training loop. By default a background thread builds the next ``prefetch`` buffers
(read, select, concatenate, shuffle, convert dtype) while the consumer trains on the current one,
handing them over through a bounded queue, so at most ``prefetch + 2`` buffers are in RAM at once.
The thread runs exactly the code the consumer would run without prefetch, in the same order, so
batches are bit-identical either way. numpy's copies release the GIL, bcolz's decompression does
not (see dlpipe.io.arrays), and on a machine with no idle core the thread competes for CPU with
the training loop, so prefetch hides part of the read time, not all of it. Stopping early
(``break``, an exception, ``close()`` or dropping the iterator) stops and joins the thread; an
error in the thread is raised in the consumer, naming the store.
"""
from __future__ import annotations

import math
import queue
import threading
from typing import Iterator, Protocol

import numpy as np
import torch

from dlpipe.core.errors import DataError
from dlpipe.train import distributed as D
from dlpipe.train.data import per_rank, shard

_LIVENESS_S = 1.0     # a consumer waiting this long checks that the prefetch thread is still alive
_JOIN_POLL_S = 0.01   # closing: how often to empty the queue again while the thread finishes


class RowSource(Protocol):
    """What the loader reads: a feature store reader (dlpipe.io.arrays) or a numpy array."""

    def __len__(self) -> int: ...


def read_rows(src, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a store reader (``.read``) or an array, as an in-RAM array."""
    return src.read(slice(start, stop)) if hasattr(src, "read") else np.asarray(src[start:stop])


def source_name(src) -> str:
    """Where rows come from, for error messages: the store's path, else the array's type and shape."""
    path = getattr(src, "path", None)
    if path is not None:
        return str(path)
    return f"in-memory {type(src).__name__} {tuple(getattr(src, 'shape', (len(src),)))}"


class ChunkedFeatureLoader:
    """Yield ``(x, y)`` float/long tensor batches from ``features`` and per-row ``targets``.

    Args:
        features: store reader or array, (n_rows, *row_shape).
        targets: (n_rows, ...) per-row targets (class ids, or word vectors for DeViSE).
        bs: batch size.
        chunk_rows: rows per contiguous read (default: the store's own chunk_rows, else 1024).
        shuffle: permute chunks and buffered rows each epoch; False reads rows in order.
        seed: with the epoch, decides the order.
        buffer_chunks: chunks shuffled together (more mixing, more RAM).
        rows: use only these store rows (the low-label runs); chunks holding none of them are
            never read, the others are still read whole and in one piece.
        prefetch: buffers a background thread reads ahead while the consumer trains (bounded
            queue); 0 reads in the consumer's thread. The batches are identical either way.
        drop_single: skip a final batch that leaves one row per process (BatchNorm cannot train
            on it); at most ``world`` rows per epoch are lost, where ``drop_last`` would lose < bs.
        rank, world: this process's share of each batch (default: from the DDP process group).
    """

    def __init__(self, features: RowSource, targets: np.ndarray, bs: int, chunk_rows: int | None = None,
                 shuffle: bool = True, seed: int = 0, buffer_chunks: int = 1, rows: np.ndarray | None = None,
                 prefetch: int = 2, drop_single: bool = False, rank: int | None = None,
                 world: int | None = None):
        self.n = len(features)
        if len(targets) != self.n:
            raise ValueError(f"feature loader: {len(targets)} targets for {self.n} feature rows")
        if int(prefetch) < 0:
            raise ValueError(f"feature loader: prefetch must be >= 0 buffers, got {prefetch}")
        self.keep = None
        if rows is not None:
            rows = np.asarray(rows, np.int64)
            if len(rows) == 0 or rows.min() < 0 or rows.max() >= self.n or len(np.unique(rows)) != len(rows):
                raise ValueError(f"feature loader: rows must be distinct positions in 0..{self.n - 1}, "
                                 f"got {len(rows)} rows spanning {rows.min(initial=0)}..{rows.max(initial=0)}")
            self.keep = np.zeros(self.n, bool)
            self.keep[rows] = True
        self.features, self.targets = features, np.asarray(targets)
        self.bs, self.shuffle, self.seed = int(bs), shuffle, int(seed)
        self.chunk_rows = int(chunk_rows or getattr(features, "chunk_rows", 1024))
        self.buffer_chunks, self.epoch = int(buffer_chunks), 0
        self.prefetch = int(prefetch)
        self.rank = D.rank() if rank is None else int(rank)
        self.world = D.world_size() if world is None else int(world)
        self.drop_single = drop_single and per_rank(self.bs, self.world) > 1

    def set_epoch(self, epoch: int) -> None:
        """Called by the learner before each epoch: the order depends on (seed, epoch) only."""
        self.epoch = int(epoch)

    @property
    def n_rows(self) -> int:
        """Rows per epoch."""
        return self.n if self.keep is None else int(self.keep.sum())

    def __len__(self) -> int:
        return math.ceil(self.n_rows / self.bs) - int(self._drops(self.n_rows % self.bs))

    def _drops(self, rows: int) -> bool:
        """Is a batch of ``rows`` global rows the one-row-per-process final batch to skip?"""
        return self.drop_single and 0 < rows <= self.world

    def chunk_order(self, rng: np.random.Generator) -> np.ndarray:
        """Start row of each chunk that holds rows in use, in this epoch's reading order."""
        starts = np.arange(0, self.n, self.chunk_rows)
        if self.keep is not None:
            starts = starts[[self.keep[s:s + self.chunk_rows].any() for s in starts]]
        return rng.permutation(starts) if self.shuffle else starts

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        buffers = self.buffers(self.epoch)        # the epoch is read at the first next(), as before
        if self.prefetch:
            buffers = prefetched(buffers, self.prefetch, source_name(self.features))
        try:
            for x, y in buffers:
                for b in range(0, len(x), self.bs):
                    xb, yb = x[b:b + self.bs], y[b:b + self.bs]
                    if len(xb) < self.bs and self._drops(len(xb)):
                        continue
                    if self.world > 1:                  # this rank's rows (the short last batch padded)
                        mine = shard(list(range(len(xb))), self.rank, self.world)
                        xb, yb = xb[mine], yb[mine]
                    yield torch.from_numpy(xb), torch.from_numpy(yb)
        finally:
            buffers.close()                         # stops and joins the prefetch thread now

    def buffers(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """This epoch's shuffled buffers, cut to whole batches (the last one may be short).

        Each item is a C-contiguous float32 feature array and its targets (int64 class ids or
        float32 vectors), ready for ``torch.from_numpy`` slice by slice.
        """
        rng = np.random.default_rng([self.seed, epoch])
        starts = self.chunk_order(rng)
        carry_x, carry_y = self._empty()
        for g in range(0, len(starts), self.buffer_chunks):
            xs, ys = [carry_x], [carry_y]
            for s in starts[g:g + self.buffer_chunks]:      # one contiguous read per chunk
                stop = min(s + self.chunk_rows, self.n)
                x, sel = self._read(s, stop), slice(None)
                if self.keep is not None:
                    sel = self.keep[s:stop]
                xs.append(x[sel])
                ys.append(self.targets[s:stop][sel])
            if self.shuffle:
                if len(xs[0]) == 0 and len(xs) == 2:        # no carry, one chunk: the gather copies
                    x, y = xs[1], ys[1]
                else:
                    x, y = np.concatenate(xs), np.concatenate(ys)
                perm = rng.permutation(len(x))
                x, y = x[perm], y[perm]
            else:
                x, y = np.concatenate(xs), np.concatenate(ys)   # a copy: batches never alias the source
            n_full = len(x) // self.bs * self.bs
            if n_full:
                yield self._ready(x[:n_full], y[:n_full])
            carry_x, carry_y = x[n_full:], y[n_full:]        # < bs rows: into the next buffer
        if len(carry_x):
            yield self._ready(carry_x, carry_y)

    def _read(self, start: int, stop: int) -> np.ndarray:
        try:
            return read_rows(self.features, start, stop)
        except (MemoryError, DataError):                # a DataError already names the store
            raise
        except Exception as e:
            raise DataError(f"{source_name(self.features)}: reading feature rows {start}:{stop} failed: "
                            f"{type(e).__name__}: {e}") from e

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        x0 = self._read(0, 0)
        return x0.reshape(0, *x0.shape[1:]), self.targets[:0]

    @staticmethod
    def _ready(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 features (stores may hold float16); int64 class ids, float32 vector targets."""
        x = np.ascontiguousarray(x.astype(np.float32, copy=False))
        y = np.ascontiguousarray(y.astype(np.int64 if np.issubdtype(y.dtype, np.integer) else np.float32, copy=False))
        return x, y


_ITEM, _END, _ERROR = "item", "end", "error"


def prefetched(items: Iterator, depth: int, what: str) -> Iterator:
    """Iterate ``items`` in a daemon thread, at most ``depth`` items ahead of the consumer.

    Closing this generator (``break`` out of a loop over it, an exception in the loop, ``close()``,
    garbage collection) stops the thread and joins it. An exception raised by ``items`` is raised
    here, in the consumer, with a note naming ``what`` (the store) unless its message does.

    Both sides block without timeouts while the other side is working: a thread that wakes up
    only to poll would take the GIL from the training loop every time (a handover of the GIL costs
    the loop a scheduling delay, several ms on a busy machine).
    """
    handover: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                handover.put((_ITEM, item))              # blocks while the queue is full
            handover.put((_END, None))
        except BaseException as e:                     # every outcome reaches the consumer
            if not stop.is_set():
                handover.put((_ERROR, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=f"prefetch {what}", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, val = handover.get(timeout=_LIVENESS_S)
            except queue.Empty:                        # slow reads, or a thread that died silently
                if not thread.is_alive() and handover.empty():
                    raise RuntimeError(f"{what}: prefetch thread ended without a result") from None
                continue
            if kind == _END:
                return
            if kind == _ERROR:
                if what not in str(val):               # read errors already name the store
                    val.add_note(f"(raised in the feature-loader prefetch thread reading {what})")
                raise val
            yield val
    finally:
        stop.set()
        if thread is not threading.current_thread():
            while thread.is_alive():                   # unblock a put on a full queue, then join
                try:
                    while True:
                        handover.get_nowait()
                except queue.Empty:
                    pass
                thread.join(timeout=_JOIN_POLL_S)
