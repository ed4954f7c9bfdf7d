"""Batches from a feature store read as whole contiguous chunks: an epoch is sequential I/O.

2017 lesson 9: shuffling row by row makes the disk seek for every row; a store whose rows were
shuffled once when written can instead be read chunk by chunk, and only the ORDER of chunks and
the rows inside an in-RAM buffer are reshuffled each epoch::

    store rows   [c0 | c1 | c2 | c3 | c4]          chunks of chunk_rows contiguous rows
    epoch e      read c3 c0 c4 c1 c2               permutation from rng(seed, e)
    buffer       rows of buffer_chunks chunks (+ the previous buffer's leftover), shuffled
    batches      bs rows at a time; the leftover (< bs rows) carries into the next buffer

Every row comes out exactly once per epoch, and the order is a pure function of (seed, epoch).
"""
from __future__ import annotations

import math
from typing import Iterator, Protocol

import numpy as np
import torch


class RowSource(Protocol):
    """What the loader reads: a feature store reader (dlpipe.io.arrays) or a numpy array."""

    def __len__(self) -> int: ...


def read_rows(src, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a store reader (``.read``) or an array, as an in-RAM array."""
    return src.read(slice(start, stop)) if hasattr(src, "read") else np.asarray(src[start:stop])


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
    """

    def __init__(self, features: RowSource, targets: np.ndarray, bs: int, chunk_rows: int | None = None,
                 shuffle: bool = True, seed: int = 0, buffer_chunks: int = 1, rows: np.ndarray | None = None):
        self.n = len(features)
        if len(targets) != self.n:
            raise ValueError(f"feature loader: {len(targets)} targets for {self.n} feature rows")
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

    def set_epoch(self, epoch: int) -> None:
        """Called by the learner before each epoch: the order depends on (seed, epoch) only."""
        self.epoch = int(epoch)

    @property
    def n_rows(self) -> int:
        """Rows per epoch."""
        return self.n if self.keep is None else int(self.keep.sum())

    def __len__(self) -> int:
        return math.ceil(self.n_rows / self.bs)

    def chunk_order(self, rng: np.random.Generator) -> np.ndarray:
        """Start row of each chunk that holds rows in use, in this epoch's reading order."""
        starts = np.arange(0, self.n, self.chunk_rows)
        if self.keep is not None:
            starts = starts[[self.keep[s:s + self.chunk_rows].any() for s in starts]]
        return rng.permutation(starts) if self.shuffle else starts

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        starts = self.chunk_order(rng)
        carry_x, carry_y = self._empty()
        for g in range(0, len(starts), self.buffer_chunks):
            xs, ys = [carry_x], [carry_y]
            for s in starts[g:g + self.buffer_chunks]:      # one contiguous read per chunk
                stop = min(s + self.chunk_rows, self.n)
                x, sel = read_rows(self.features, s, stop), slice(None)
                if self.keep is not None:
                    sel = self.keep[s:stop]
                xs.append(x[sel])
                ys.append(self.targets[s:stop][sel])
            x, y = np.concatenate(xs), np.concatenate(ys)
            if self.shuffle:
                perm = rng.permutation(len(x))
                x, y = x[perm], y[perm]
            n_full = len(x) // self.bs * self.bs
            for b in range(0, n_full, self.bs):
                yield self._tensors(x[b:b + self.bs], y[b:b + self.bs])
            carry_x, carry_y = x[n_full:], y[n_full:]        # < bs rows: into the next buffer
        if len(carry_x):
            yield self._tensors(carry_x, carry_y)

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        x0 = read_rows(self.features, 0, 0)
        return x0.reshape(0, *x0.shape[1:]), self.targets[:0]

    @staticmethod
    def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 features (stores may hold float16); int64 class ids, float32 vector targets."""
        x = x.astype(np.float32, copy=False)
        y = y.astype(np.int64 if np.issubdtype(y.dtype, np.integer) else np.float32, copy=False)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
