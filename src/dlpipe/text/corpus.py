"""On-disk formats of the text pipeline: token stores (tokenize) and id corpora (numericalize).

Both are directories of plain arrays, never pickles, so they memory-map, stream and diff cheaply,
and both are byte-identical across runs and worker counts.

Token store (output of ``stages/tokenize.py``)::

    tokens.bin    UTF-8 bytes: every token of every document, in document order, each token
                  followed by one NUL byte (b"\\x00"). NUL cannot occur in a token: the
                  tokenizer turns NUL characters of the input into spaces.
    lengths.npy   int64 (n_docs,)  number of tokens of each document
    labels.npy    int64 (n_docs,)  class index of each document (0 for language-model sets)

Id corpus (output of ``stages/numericalize.py``; the models read this)::

    ids.npy       int32 (n_tokens,)   all documents' token ids concatenated, in document order
    offsets.npy   int64 (n_docs + 1,) document i is ids[offsets[i]:offsets[i + 1]]
    labels.npy    int64 (n_docs,)     class index of each document (zeros for LM sets)

Every document starts with its ``xxbos`` id, so ``Corpus.stream()`` is the LM's token stream.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from dlpipe.core.errors import DataError
from dlpipe.core.atomic import atomic_dir

SEP = b"\x00"
_READ_BYTES = 1 << 22  # tokens.bin is read 4 MiB at a time: memory stays flat on any corpus size


# ---- token stores -----------------------------------------------------------------------------

def load_token_meta(tok_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, labels) of a token store, checked against each other."""
    tok_dir = Path(tok_dir)
    try:
        lengths, labels = np.load(tok_dir / "lengths.npy"), np.load(tok_dir / "labels.npy")
    except FileNotFoundError as e:
        raise DataError(f"{tok_dir}: not a token store (missing {Path(e.filename).name})") from None
    if lengths.shape != labels.shape:
        raise DataError(f"{tok_dir}: lengths.npy has {len(lengths)} docs but labels.npy {len(labels)}")
    return lengths, labels


def iter_token_docs(tok_dir: str | os.PathLike) -> Iterator[list[str]]:
    """Yield each document's tokens (a list of str), in order, reading tokens.bin in blocks."""
    tok_dir = Path(tok_dir)
    lengths, _ = load_token_meta(tok_dir)
    pending: list[bytes] = []  # tokens read but not yet handed out
    pos, rest = 0, b""
    with open(tok_dir / "tokens.bin", "rb") as fh:
        for i, n in enumerate(lengths):
            while len(pending) - pos < n:
                block = fh.read(_READ_BYTES)
                if not block:
                    raise DataError(f"{tok_dir}/tokens.bin: ends inside document {i} "
                                    f"(lengths.npy expects {int(lengths.sum())} tokens)")
                parts = (rest + block).split(SEP)
                rest = parts.pop()  # an unfinished token, completed by the next block
                pending, pos = pending[pos:] + parts, 0
            yield SEP.join(pending[pos:pos + n]).decode("utf-8").split("\x00") if n else []
            pos += int(n)
        if len(pending) > pos or rest or fh.read(1):
            raise DataError(f"{tok_dir}/tokens.bin: more tokens than lengths.npy accounts for")


def encode_tokens(docs: Iterable[list[str]]) -> bytes:
    """Documents' tokens -> the tokens.bin byte layout (each token NUL-terminated)."""
    return b"".join((("\x00".join(toks) + "\x00") if toks else "").encode("utf-8") for toks in docs)


# ---- id corpora -------------------------------------------------------------------------------

class Corpus:
    """Documents of token ids: ``len(c)``, ``c.doc(i)``, ``c.lengths``, ``c.labels``, ``c.stream()``."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, labels: np.ndarray, path: Path | None = None):
        where = path or "corpus"
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(ids):
            raise DataError(f"{where}: offsets.npy must start at 0 and end at len(ids) = {len(ids)}")
        if len(labels) != len(offsets) - 1:
            raise DataError(f"{where}: labels.npy has {len(labels)} entries, expected {len(offsets) - 1}")
        if np.any(np.diff(offsets) < 0):
            raise DataError(f"{where}: offsets.npy is not non-decreasing")
        self.ids, self.offsets, self.labels, self.path = ids, offsets, labels, path

    def __len__(self) -> int:
        return len(self.labels)

    def doc(self, i: int) -> np.ndarray:
        """Token ids (int32) of document ``i``."""
        return self.ids[self.offsets[i]:self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    def stream(self) -> np.ndarray:
        """All ids concatenated in document order (documents are separated by their xxbos)."""
        return self.ids

    def subset(self, rows: np.ndarray) -> "Corpus":
        """The documents ``rows`` (in that order), as an in-memory corpus."""
        docs = [np.asarray(self.doc(int(i))) for i in rows]
        offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
        ids = np.concatenate(docs).astype(np.int32) if docs else np.zeros(0, np.int32)
        return Corpus(ids, offsets, np.asarray(self.labels)[np.asarray(rows, dtype=np.int64)], self.path)


def save_corpus(out_dir: str | os.PathLike, docs: Iterable[np.ndarray] | tuple[np.ndarray, np.ndarray],
                labels: Iterable[int] | np.ndarray) -> Path:
    """Write an id corpus atomically.

    Args:
        out_dir: the corpus directory (replaced whole).
        docs: an iterable of per-document id arrays (streamed to disk, never all in memory), or
            an ``(ids, offsets)`` pair of arrays.
        labels: one class index per document.
    Returns:
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    labels = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels, dtype=np.int64)
    with atomic_dir(out_dir) as tmp:
        if isinstance(docs, tuple):
            ids, offsets = np.asarray(docs[0], dtype=np.int32), np.asarray(docs[1], dtype=np.int64)
            np.save(tmp / "ids.npy", ids)
        else:
            offsets = _stream_ids(docs, tmp)
        np.save(tmp / "offsets.npy", offsets)
        np.save(tmp / "labels.npy", labels)
        Corpus(np.load(tmp / "ids.npy", mmap_mode="r"), offsets, labels, out_dir)  # validates
    return out_dir


def _stream_ids(docs: Iterable[np.ndarray], tmp: Path) -> np.ndarray:
    """Append each document's ids to a raw file, then wrap it as ids.npy; return the offsets."""
    lengths = [0]
    raw = tmp / "ids.raw"
    with open(raw, "wb") as fh:
        for d in docs:
            d = np.asarray(d, dtype=np.int32)
            fh.write(d.tobytes())
            lengths.append(len(d))
    n = sum(lengths)
    ids = np.memmap(raw, dtype=np.int32, mode="r", shape=(n,)) if n else np.zeros(0, np.int32)
    np.save(tmp / "ids.npy", ids)  # copies page by page from the memmap
    del ids
    raw.unlink()
    return np.cumsum(lengths, dtype=np.int64)


def load_corpus(path: str | os.PathLike, mmap: bool = True) -> Corpus:
    """Open an id corpus directory; ``mmap`` keeps ids on disk until they are touched."""
    path = Path(path)
    try:
        ids = np.load(path / "ids.npy", mmap_mode="r" if mmap else None)
        offsets, labels = np.load(path / "offsets.npy"), np.load(path / "labels.npy")
    except FileNotFoundError as e:
        raise DataError(f"{path}: not an id corpus (missing {Path(e.filename).name})") from None
    if ids.dtype != np.int32:
        raise DataError(f"{path}/ids.npy: expected int32 ids, got {ids.dtype}")
    return Corpus(ids, offsets, labels, path)
