"""Classifier batching: length-aware samplers, padding collate and the (ids, label) dataset.

Sorting by length keeps a batch of ~250-token reviews from being padded to 2,000 tokens because
of one long review; ``SortishSampler`` adds randomness for training (James Bradbury's idea, as
in fastai), ``SortSampler`` is fully sorted for validation.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from dlpipe.text.corpus import Corpus


class SortSampler(Sampler[int]):
    """Indices by decreasing length (stable: equal lengths keep their order)."""

    def __init__(self, lengths: Sequence[int] | np.ndarray):
        self.lengths = np.asarray(lengths)

    def set_epoch(self, epoch: int) -> None:
        """No randomness: present so the training engine may call it on any sampler."""

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(np.argsort(-self.lengths, kind="stable").tolist())


class SortishSampler(Sampler[int]):
    """fastai's sortish order: shuffle, sort megabatches of ``bs * 50`` by length, shuffle batches.

    The batch holding the longest item goes first, so an out-of-memory shows up at step 0.
    The order is a pure function of ``(seed, epoch)``.
    """

    def __init__(self, lengths: Sequence[int] | np.ndarray, bs: int, seed: int):
        self.lengths, self.bs, self.seed, self.epoch = np.asarray(lengths), bs, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        idx = rng.permutation(len(self.lengths))
        mega = self.bs * 50
        chunks = [idx[i:i + mega] for i in range(0, len(idx), mega)]
        # within a megabatch: longest first (stable, so ties keep the shuffled order)
        idx = np.concatenate([c[np.argsort(-self.lengths[c], kind="stable")] for c in chunks]) if chunks else idx
        batches = [idx[i:i + self.bs] for i in range(0, len(idx), self.bs)]
        if not batches:
            return iter([])
        longest = int(np.argmax([self.lengths[b[0]] for b in batches]))
        batches[0], batches[longest] = batches[longest], batches[0]
        rest = [batches[i] for i in 1 + rng.permutation(len(batches) - 1)]
        return iter(np.concatenate([batches[0]] + rest).tolist())


class ClassifierDataset(Dataset):
    """``(ids, label)`` per document of an id corpus; ``ids`` is an int64 numpy array."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus

    def __len__(self) -> int:
        return len(self.corpus)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return np.asarray(self.corpus.doc(i), dtype=np.int64), int(self.corpus.labels[i])


def pad_collate(samples: Sequence[tuple[np.ndarray, int]], pad_idx: int = 1, pad_first: bool = True,
                backwards: bool = False, seq_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a batch of ``(ids, label)`` to its longest document.

    ``pad_first`` puts the padding before the text. With ``seq_len`` (the classifier's bptt) only
    whole chunks of ``seq_len`` pads go first and the rest goes last (fastai v2's
    ``pad_input_chunk``): every text then starts on a chunk boundary, so the chunked encoder can
    keep a row's hidden state at zero until its text starts, and a document's prediction does not
    depend on how long its batch neighbours are. ``backwards`` reverses each text (the backward
    classifier reads documents end to start); the padding layout is the same.

    Returns:
        ``x`` (bs, max_len) LongTensor and ``y`` (bs,) LongTensor of labels.
    """
    max_len = max(len(s[0]) for s in samples)
    x = torch.full((len(samples), max_len), pad_idx, dtype=torch.long)
    for i, (ids, _) in enumerate(samples):
        ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        if backwards:
            ids = ids.flip(0)
        n_pad = max_len - len(ids)
        lead = 0 if not pad_first else n_pad if not seq_len else n_pad // seq_len * seq_len
        x[i, lead:lead + len(ids)] = ids
    return x, torch.tensor([int(s[1]) for s in samples], dtype=torch.long)


def sorted_batches(corpus: Corpus, bs: int, collate) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """``(corpus indices, x)`` batches of ``corpus`` longest first (little padding), for inference:
    the caller scatters each batch's outputs back to ``indices`` to get corpus order."""
    order = np.asarray(list(iter(SortSampler(corpus.lengths))))
    ds = ClassifierDataset(corpus)
    for start in range(0, len(order), bs):
        idx = order[start:start + bs]
        x, _ = collate([ds[int(i)] for i in idx])
        yield idx, x
