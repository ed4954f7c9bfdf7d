"""Sentence pairs for encoder-decoders: the (source, target) dataset, its padding collate and the
token loss/accuracy that ignore padding.

    source ids   xxbos w1 w2 ... wS                     (the tokenizer's xxbos kept: a start marker)
    target ids   xxbos v1 v2 ... vT xxeos               -> tgt_in  = xxbos v1 ... vT      (decoder inputs)
                                                          tgt_out = v1 ... vT xxeos       (what it must predict)

Both sides are right-padded with ``xxpad`` to the longest row of the batch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from dlpipe.core.errors import DataError
from dlpipe.text.corpus import Corpus


class PairDataset(Dataset):
    """``(src ids, tgt ids + xxeos)`` per pair of two aligned id corpora."""

    def __init__(self, src: Corpus, tgt: Corpus, eos_idx: int):
        if len(src) != len(tgt):
            raise DataError(f"{src.path} has {len(src)} sentences but {tgt.path} has {len(tgt)}: pairs must align")
        self.src, self.tgt, self.eos = src, tgt, eos_idx

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.src.doc(i), np.int64), np.append(np.asarray(self.tgt.doc(i), np.int64), self.eos)


def pad_right(seqs: Sequence[np.ndarray], pad_idx: int) -> torch.Tensor:
    """(n, longest) LongTensor, each row left-aligned and padded with ``pad_idx``."""
    x = torch.full((len(seqs), max(len(s) for s in seqs)), pad_idx, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.as_tensor(s)
    return x


def pair_collate(samples: Sequence[tuple[np.ndarray, np.ndarray]], pad_idx: int = 1):
    """-> ``((src (bs, S), tgt_in (bs, T)), tgt_out (bs, T))`` for the Learner (inputs tuple, target)."""
    src = pad_right([s for s, _ in samples], pad_idx)
    tgt = pad_right([t for _, t in samples], pad_idx)
    # a shorter row's xxeos (and pads) also appear in tgt_in, where tgt_out is padding: never in the loss
    return (src, tgt[:, :-1]), tgt[:, 1:]


def seq_loss(logits: torch.Tensor, target: torch.Tensor, pad_idx: int = 1, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy per real target token: logits (bs, T, V), target (bs, T) with ``pad_idx`` ignored."""
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=pad_idx,
                           label_smoothing=label_smoothing)


def token_accuracy(logits: torch.Tensor, target: torch.Tensor, pad_idx: int = 1) -> torch.Tensor:
    """Share of real target tokens whose argmax is right."""
    real = target != pad_idx
    return ((logits.argmax(-1) == target) & real).sum().float() / real.sum().clamp(min=1)
