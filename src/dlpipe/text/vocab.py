"""Vocabulary: token <-> id, built from training texts only, special tokens first.

``itos.json`` is a JSON list (tokens may hold ``\\n`` or ``▁``, which a line-per-token file
could not round-trip). Ids: ``xxunk`` = 0, ``xxpad`` = 1, then the other specials in
:data:`dlpipe.text.rules.SPECIALS` order, then tokens by count (descending), ties by token.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from dlpipe.core.errors import DataError
from dlpipe.core.atomic import write_text
from dlpipe.text.corpus import iter_token_docs, load_corpus, load_token_meta, save_corpus
from dlpipe.text.rules import PAD, SPECIALS, UNK


def read_itos(path: str | os.PathLike) -> list[str]:
    """An ``itos.json`` vocabulary (a JSON list of token strings), checked."""
    try:
        itos = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: vocabulary not found") from None
    if not isinstance(itos, list) or not itos or not all(isinstance(t, str) for t in itos):
        raise DataError(f"{path}: expected a JSON list of token strings")
    return itos


class Vocab:
    """A fixed token list ``itos`` and its inverse ``stoi``; unknown tokens map to ``xxunk``."""

    def __init__(self, itos: Sequence[str], source: str = "itos"):
        itos = list(itos)
        missing = [s for s in SPECIALS if s not in itos]
        if missing:
            raise DataError(f"{source}: missing special token(s) {missing}; expected all of {list(SPECIALS)}")
        if itos[0] != UNK or itos[1] != PAD:
            raise DataError(f"{source}: expected '{UNK}' at id 0 and '{PAD}' at id 1, got {itos[:2]}")
        stoi = {t: i for i, t in enumerate(itos)}
        if len(stoi) != len(itos):
            dup = next(t for t, n in Counter(itos).items() if n > 1)
            raise DataError(f"{source}: token {dup!r} appears more than once")
        self.itos, self.stoi = itos, stoi

    @classmethod
    def build(cls, docs: Iterable[Iterable[str]], max_vocab: int, min_freq: int) -> "Vocab":
        """Count tokens over ``docs`` and keep those seen ``min_freq``+ times, ``max_vocab`` in all.

        Args:
            docs: an iterable of token sequences (one per document), training split only.
            max_vocab: vocabulary size cap, special tokens included.
            min_freq: minimum count of a non-special token.
        """
        counts: Counter = Counter()
        for toks in docs:
            counts.update(toks)
        return cls.from_counts(counts, max_vocab, min_freq)

    @classmethod
    def from_counts(cls, counts: Counter, max_vocab: int, min_freq: int) -> "Vocab":
        """Specials, then tokens with count >= min_freq by (count desc, token asc), cut at max_vocab."""
        if max_vocab < len(SPECIALS):
            raise ValueError(f"max_vocab={max_vocab} leaves no room for the {len(SPECIALS)} special tokens")
        specials = set(SPECIALS)
        kept = sorted(((c, t) for t, c in counts.items() if c >= min_freq and t not in specials),
                      key=lambda ct: (-ct[0], ct[1]))
        return cls(list(SPECIALS) + [t for _, t in kept[:max_vocab - len(SPECIALS)]])

    def __len__(self) -> int:
        return len(self.itos)

    def numericalize(self, toks: Iterable[str]) -> np.ndarray:
        """Tokens -> int32 ids (unknown -> 0)."""
        get = self.stoi.get
        return np.fromiter((get(t, 0) for t in toks), dtype=np.int32)

    def textify(self, ids: Iterable[int], sep: str = " ") -> str:
        """Ids -> the tokens joined by ``sep`` (for reading samples)."""
        return sep.join(self.itos[int(i)] for i in ids)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``itos.json`` atomically (one token per line inside a JSON list, for diffs)."""
        body = ",\n".join(json.dumps(t, ensure_ascii=False) for t in self.itos)
        write_text(path, "[\n" + body + "\n]\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        """Read and validate an ``itos.json``."""
        path = Path(path)
        try:
            itos = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: vocabulary file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a JSON itos list: {e}") from None
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise DataError(f"{path}: expected a JSON list of strings")
        return cls(itos, source=str(path))


@dataclass(frozen=True)
class NumericalizeParams:
    max_vocab: int = field(metadata=dict(ge=len(SPECIALS)))
    min_freq: int = field(metadata=dict(ge=1))


def numericalize_splits(splits: Mapping[str, Path] | Sequence[tuple[str, Path]] = (), out: str | os.PathLike = "",
                        p: NumericalizeParams | None = None, vocab_from: str | os.PathLike | None = None,
                        tok_dir: str | os.PathLike | None = None) -> dict:
    """Token stores -> id corpora ``out/<split>/`` with one shared vocabulary.

    Args:
        splits: split name -> token store dir (or such pairs); the vocabulary is built from the train split.
        out: gets ``itos.json`` (when built here) and one id corpus per split.
        p: vocabulary params (unused when ``vocab_from`` is given).
        vocab_from: an existing ``itos.json`` to reuse (the classifier reuses the LM's).
        tok_dir: every token store below it is one more split, named after its folder.
    Returns:
        metrics: vocab_size and, per split, docs / tokens / unk_rate (share of ids that are xxunk).
    """
    out_dir, splits = Path(out), dict(splits)
    if tok_dir is not None:
        splits.update({d.name: d for d in sorted(Path(tok_dir).iterdir()) if (d / "lengths.npy").is_file()})
    if not splits:
        raise DataError(f"{tok_dir or 'numericalize'}: no token stores to numericalize")
    if vocab_from is not None:
        vocab = Vocab.load(vocab_from)
    else:
        if "train" not in splits:
            raise ValueError(f"building a vocabulary needs a 'train' split, got {sorted(splits)}")
        vocab = Vocab.build(tqdm(iter_token_docs(splits["train"]), desc="count tokens", unit=" docs",
                                 mininterval=2), p.max_vocab, p.min_freq)
        vocab.save(out_dir / "itos.json")
    metrics: dict = {"vocab_size": len(vocab)}
    for name, tok_dir in splits.items():
        _, labels = load_token_meta(tok_dir)
        docs = (vocab.numericalize(t) for t in tqdm(iter_token_docs(tok_dir), desc=f"numericalize {name}",
                                                     unit=" docs", total=len(labels), mininterval=2))
        corpus = load_corpus(save_corpus(out_dir / name, docs, labels))
        n_unk = int(np.count_nonzero(corpus.ids == 0))
        metrics[name] = {"docs": len(corpus), "tokens": corpus.n_tokens,
                         "unk_rate": n_unk / max(corpus.n_tokens, 1)}
    return metrics
