"""Tokenize a ``label,text`` CSV into a token store: fastai's rules + spaCy, parallel and streaming.

The CSV is read ``chunk_size`` rows at a time; chunks go to ``n_workers`` processes (at
most ``2 * n_workers`` chunks in flight) and their results are appended to ``tokens.bin`` in
input order as they arrive, so memory is bounded by the chunk size, not the corpus, and the
output bytes do not depend on ``n_workers``. Format: see :mod:`dlpipe.text.corpus`.
"""
from __future__ import annotations

import csv
import multiprocessing
import os
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from tqdm import tqdm

from dlpipe.core.errors import DataError
from dlpipe.core.atomic import atomic_dir
from dlpipe.text.rules import UNK, apply_rules, join_fields

_SPACY_BATCH = 1000  # docs per spaCy pipe batch; the tokenizer alone gains nothing from larger


@dataclass(frozen=True)
class TokenizeParams:
    n_workers: int = field(metadata=dict(ge=1))
    chunk_size: int = field(metadata=dict(ge=1))


def make_tokenizer():
    """spaCy's blank English tokenizer (rule-based; no pipeline components to run).

    fastai registers each special token as a spaCy special case; we do not: they are plain
    lower-case letter strings that spaCy never splits anyway (tests/unit/test_tokenize.py checks
    the outputs agree), and special cases make spaCy run a phrase matcher over every document,
    which made tokenization ~3x slower.
    """
    import spacy

    return spacy.blank("en").tokenizer


def tokenize_texts(texts: list[str], tokenizer=None) -> list[list[str]]:
    """Rules + spaCy on a list of texts -> one token list per text (fastai 2's ``Tokenizer``)."""
    data, lengths, _ = _encode_chunk(texts, tokenizer or make_tokenizer())
    toks = data.decode("utf-8").split("\x00")
    out, pos = [], 0
    for n in lengths:
        out.append(toks[pos:pos + n])
        pos += n
    return out


def _encode_chunk(texts: list[str], tokenizer) -> tuple[bytes, np.ndarray, int]:
    """Texts -> (NUL-terminated UTF-8 tokens, tokens per text, whitespace words in the input)."""
    # NUL is the token separator on disk, so it may not survive into a token.
    prepped = [apply_rules(t.replace("\x00", " ")) for t in texts]
    parts, lengths = [], np.empty(len(texts), dtype=np.int64)
    for i, doc in enumerate(tokenizer.pipe(prepped, batch_size=_SPACY_BATCH)):
        toks = [t.text for t in doc]
        lengths[i] = len(toks)
        parts.append("\x00".join(toks))
    # replace_space on every token at once: no token holds NUL, so only in-token spaces change
    joined = "\x00".join(p for p in parts if p).replace(" ", "▁")
    data = (joined + "\x00").encode("utf-8") if joined else b""
    return data, lengths, sum(len(t.split()) for t in texts)


_WORKER_TOKENIZER = None


def _init_worker() -> None:
    global _WORKER_TOKENIZER
    if _WORKER_TOKENIZER is None:  # a forked worker already has the parent's
        _WORKER_TOKENIZER = make_tokenizer()


def _work(texts: list[str]) -> tuple[bytes, np.ndarray, int]:
    return _encode_chunk(texts, _WORKER_TOKENIZER)


# Linux: fork, so workers inherit the parent's already-imported spaCy (seconds saved per run);
# elsewhere spawn. Everything a worker runs is a top-level function, so both work.
START_METHOD = "fork" if sys.platform == "linux" else "spawn"


def ordered_map(fn: Callable, items: Iterable, n_workers: int, initializer: Callable,
                start_method: str | None = None) -> Iterator:
    """``map(fn, items)`` over worker processes, in order, with at most 2*n_workers in flight."""
    initializer()  # in the parent too: forked workers inherit it, n_workers=1 uses it directly
    if n_workers == 1:
        yield from map(fn, items)
        return
    ctx = multiprocessing.get_context(start_method or START_METHOD)
    with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=initializer) as ex:
        pending: deque = deque()
        for item in items:
            pending.append(ex.submit(fn, item))
            if len(pending) >= 2 * n_workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def read_csv_chunks(src: str | os.PathLike, chunk_size: int) -> Iterator[tuple[list[int], list[str]]]:
    """Yield (labels, texts) of ``chunk_size`` rows from a no-header ``label,text[,text...]`` CSV.

    Several text columns are joined into one text with ``xxfld i`` markers (fastai's mark_fields).
    """
    labels, texts = [], []
    # surrogateescape: a bad byte reaches the row it is in, so the error can name that line (a strict
    # decoder fails on the 8 KiB read-ahead block, lines before the csv reader gets there).
    with open(src, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        try:
            for row in reader:
                _check_utf8(row, src, reader.line_num)
                labels.append(_label(row, src, reader.line_num))
                texts.append(join_fields(row[1:]))
                if len(texts) == chunk_size:
                    yield labels, texts
                    labels, texts = [], []
        except csv.Error as e:
            raise DataError(f"{src}: line {reader.line_num}: malformed CSV: {e}") from None
    if texts:
        yield labels, texts


def _check_utf8(row: list[str], src, line: int) -> None:
    for cell in row:
        try:
            cell.encode("utf-8")
        except UnicodeEncodeError as e:   # a lone surrogate: an undecodable input byte
            bad = cell[e.start].encode("utf-8", "surrogateescape")
            raise DataError(f"{src}: line {line}: not UTF-8 (byte {bad!r} after {cell[:e.start][-20:]!r})") from None


def _label(row: list[str], src, line: int) -> int:
    if len(row) < 2:
        raise DataError(f"{src}: line {line}: expected 'label,text' (2+ columns), got {len(row)} column(s)")
    try:
        return int(row[0])
    except ValueError:
        raise DataError(f"{src}: line {line}: label must be an integer class index, got {row[0][:40]!r}") from None


def tokenize_csv(src: str | os.PathLike, out: str | os.PathLike, p: TokenizeParams,
                 start_method: str | None = None) -> dict:
    """Tokenize CSV ``src`` into the token store ``out`` (written atomically).

    Returns:
        metrics: docs, tokens, words (whitespace-split input), seconds, words_per_s,
        tokens_per_s, unk_tokens, unk_rate, docs_with_unk, n_workers.
    """
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise DataError(f"{src}: input CSV not found")
    start = time.perf_counter()
    labels: list[int] = []
    lengths: list[np.ndarray] = []
    words = unk = docs_with_unk = 0
    chunks = read_csv_chunks(src, p.chunk_size)
    label_q: deque = deque()  # labels wait here while their texts are in a worker

    def texts_only():
        for lab, texts in chunks:
            label_q.append(lab)
            yield texts

    with atomic_dir(out) as tmp, open(tmp / "tokens.bin", "wb") as fh, \
            tqdm(desc=f"tokenize {src.name}", unit=" docs", mininterval=2) as bar:
        for data, lens, n_words in ordered_map(_work, texts_only(), p.n_workers, _init_worker, start_method):
            fh.write(data)
            labels.extend(label_q.popleft())
            lengths.append(lens)
            words += n_words
            n_unk, n_docs_unk = _unk_stats(data, lens)
            unk, docs_with_unk = unk + n_unk, docs_with_unk + n_docs_unk
            bar.update(len(lens))
        if not labels:
            raise DataError(f"{src}: no rows to tokenize")
        all_lengths = np.concatenate(lengths)
        np.save(tmp / "lengths.npy", all_lengths)
        np.save(tmp / "labels.npy", np.asarray(labels, dtype=np.int64))
    secs = time.perf_counter() - start
    n_tok = int(all_lengths.sum())
    return {"docs": len(labels), "tokens": n_tok, "words": words, "seconds": round(secs, 3),
            "words_per_s": round(words / secs), "tokens_per_s": round(n_tok / secs),
            "unk_tokens": unk, "unk_rate": unk / max(n_tok, 1), "docs_with_unk": docs_with_unk,
            "n_workers": p.n_workers}


def _unk_stats(data: bytes, lens: np.ndarray) -> tuple[int, int]:
    """(xxunk tokens, documents holding one) in a chunk's NUL-terminated token bytes."""
    if UNK.encode() not in data:  # the common case (raw reviews have no xxunk): no per-doc work
        return 0, 0
    is_unk = np.array(data.split(b"\x00")[:-1], dtype=object) == UNK.encode()
    per_doc = np.add.reduceat(is_unk, np.cumsum(lens) - lens) if len(is_unk) else np.zeros(0)
    return int(is_unk.sum()), int(np.count_nonzero(per_doc))


def tokenize_dir(src: str | os.PathLike, out: str | os.PathLike, p: TokenizeParams) -> dict:
    """Tokenize every ``src/<name>.csv`` into the token store ``out/<name>/`` (all or nothing:
    ``out`` appears only when every set is done). Returns metrics per set."""
    src = Path(src)
    csvs = sorted(src.glob("*.csv"))
    if not csvs:
        raise DataError(f"{src}: no .csv files to tokenize")
    with atomic_dir(out) as tmp:
        return {f.stem: tokenize_csv(f, tmp / f.stem, p) for f in csvs}


def tokenize(src: str | os.PathLike, out: str | os.PathLike, p: TokenizeParams) -> dict:
    """:func:`tokenize_dir` for a directory of CSVs, :func:`tokenize_csv` for one CSV."""
    return tokenize_dir(src, out, p) if Path(src).is_dir() else tokenize_csv(src, out, p)
