"""Language-model batches: one token stream cut into ``bs`` columns, read in random-length bptt slices.

An epoch is a pure function of ``(seed, epoch)``: the document order (if shuffled) and every
sequence length come from ``np.random.default_rng([seed, epoch])``, so a resumed run sees the
same batches. Batches are batch-first: ``x, y`` are ``(bs, seq_len)`` LongTensors, ``y`` is
``x`` shifted one token along the stream. Under DDP with W processes, rank r reads columns
r, r+W, ... (``bs / W`` of them): together the ranks read exactly the single-process batch.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from dlpipe.text.corpus import Corpus
from dlpipe.train import distributed as D
from dlpipe.train.data import per_rank


def batchify(stream: np.ndarray, bs: int) -> np.ndarray:
    """Cut a 1-D stream into ``bs`` contiguous columns, dropping the tail that fills no column.

    With the alphabet as the stream and bs=4 (pytorch/examples' picture)::

        ┌ a g m s ┐
        │ b h n t │
        │ c i o u │    n_steps = 26 // 4 = 6 rows; "y z" are dropped.
        │ d j p v │    Column j is stream[j*6:(j+1)*6], so reading down a column
        │ e k q w │    continues one text, and row i holds step i of every column.
        └ f l r x ┘

    Returns:
        an ``(n_steps, bs)`` array (a view when possible).
    """
    if bs < 1:
        raise ValueError(f"bs must be >= 1, got {bs}")
    n_steps = len(stream) // bs
    return np.asarray(stream[:n_steps * bs]).reshape(bs, n_steps).T


def draw_seq_len(bptt: int, rng: np.random.Generator, p_bptt: float = 0.95, sigma: float = 5.0,
                 min_seq: int = 5) -> int:
    """One draw: ``bptt`` w.p. ``p_bptt`` else ``bptt / 2``, then ``max(min_seq, int(Normal(., sigma)))``."""
    base = bptt if rng.random() < p_bptt else bptt / 2
    return max(min_seq, int(rng.normal(base, sigma)))


def draw_seq_lens(n_steps: int, bptt: int, rng: np.random.Generator, p_bptt: float = 0.95,
                  sigma: float = 5.0, min_seq: int = 5, random_bptt: bool = True) -> np.ndarray:
    """Sequence lengths covering rows 0..n_steps-2 (each x row needs the next row as its y).

    Per batch, as in the lecture (from AWD-LSTM), see :func:`draw_seq_len`; the last is cut to fit.
    """
    lens, i = [], 0
    while i < n_steps - 1:
        seq = draw_seq_len(bptt, rng, p_bptt, sigma, min_seq) if random_bptt else bptt
        seq = min(seq, n_steps - 1 - i)
        lens.append(seq)
        i += seq
    return np.asarray(lens, dtype=np.int64)


class LMLoader:
    """Stateful-RNN batches over a token stream (fastai's ``LanguageModelLoader``, batch-first).

    Args:
        stream: all token ids (documents already start with xxbos), or a :class:`Corpus`
            (needed for ``shuffle``: documents are permuted whole).
        bs, bptt: columns (global: split over DDP ranks) and mean sequence length.
        seed: with the epoch, fixes shuffling and sequence lengths.
        shuffle: permute document order each epoch (fastai v2 does for training).
        backwards: reverse the stream (for the backward LM).
        p_bptt, sigma, min_seq, random_bptt: the sequence-length draw, see :func:`draw_seq_lens`.
        rank, world: this process's columns (default: from the DDP process group, if any).
    """

    def __init__(self, stream: np.ndarray | Corpus, bs: int, bptt: int, seed: int, shuffle: bool = False,
                 backwards: bool = False, p_bptt: float = 0.95, sigma: float = 5.0, min_seq: int = 5,
                 random_bptt: bool = True, rank: int | None = None, world: int | None = None):
        self.corpus = stream if isinstance(stream, Corpus) else None
        self.stream = stream.stream() if isinstance(stream, Corpus) else np.asarray(stream)
        if shuffle and self.corpus is None:
            raise ValueError("LMLoader(shuffle=True) needs a Corpus (document boundaries), not a bare stream")
        if len(self.stream) // bs < 2:
            raise ValueError(f"stream of {len(self.stream)} tokens is too short for bs={bs}")
        self.bs, self.bptt, self.seed, self.shuffle, self.backwards = bs, bptt, seed, shuffle, backwards
        self.rank = D.rank() if rank is None else rank
        self.world = D.world_size() if world is None else world
        per_rank(bs, self.world)                                   # fails early, naming the split
        self.draw = dict(p_bptt=p_bptt, sigma=sigma, min_seq=min_seq, random_bptt=random_bptt)
        self.n_steps = len(self.stream) // bs
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Fix this epoch's document order and sequence lengths (so ``len()`` is exact)."""
        self.epoch = epoch
        self._rng = np.random.default_rng([self.seed, epoch])
        self.seq_lens = draw_seq_lens(self.n_steps, self.bptt, self._rng, **self.draw)

    def __len__(self) -> int:
        return len(self.seq_lens)

    def epoch_stream(self) -> np.ndarray:
        """This epoch's stream: documents permuted (if shuffle) and reversed (if backwards)."""
        stream = self.stream
        if self.shuffle:
            c = self.corpus
            order = np.random.default_rng([self.seed, self.epoch, 1]).permutation(len(c))
            stream = np.concatenate([c.doc(i) for i in order]) if len(c) else stream
        return stream[::-1] if self.backwards else stream

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        cols = batchify(self.epoch_stream(), self.bs).T[self.rank::self.world]  # (bs/W, n_steps): row b is column b*W+rank
        i = 0
        for seq in self.seq_lens:
            x = torch.from_numpy(cols[:, i:i + seq].astype(np.int64))          # (bs, seq)
            y = torch.from_numpy(cols[:, i + 1:i + 1 + seq].astype(np.int64))  # (bs, seq)
            yield x, y
            i += int(seq)
