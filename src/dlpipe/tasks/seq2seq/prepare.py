"""prepare_pairs: parallel caption files -> normalised, tokenized sentence pairs, per language and split.

Input: a directory of ``<stem>.<lang>.gz`` files (Multi30k's raw task-1 layout), one sentence per
line, line i of the French file the translation of line i of the English one. ``splits`` maps
train/valid/test to stems. Output (written whole or not at all)::

    OUT/fr/{train,valid,test}/   token stores (tokens.bin, lengths.npy, labels.npy) of the French side
    OUT/en/{train,valid,test}/   the same for English (numericalize_pairs@<lang> reads OUT/<lang>)
    OUT/text/<split>.<lang>      the normalised sentences, one per line (BLEU references, samples)

Tokens: fastai's rules (xxbos, xxmaj, xxup...) and spaCy's blank tokenizer of the language, the
ULMFiT pipeline's own. Only training pairs are capped at ``max_tokens`` per side; validation and the
official test set are kept whole.

Full scale (lesson 11): SRC is fastai's ``giga-fren.tgz`` instead. Its two files are streamed out of
the archive (two passes: English, then French) and the lecture's questions kept: the English side
starting with "Wh" and ending with "?", the French side one sentence ending with "?". The ~52k pairs
are split seeded: ``holdout`` of them for valid, as many for test, the rest for training.
"""
from __future__ import annotations

import gzip
import re
import tarfile
import unicodedata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dlpipe.core.atomic import atomic_dir
from dlpipe.core.errors import DataError
from dlpipe.text.corpus import encode_tokens
from dlpipe.text.tokenize import tokenize_texts
from dlpipe.tasks.seq2seq.params import LANGS, PrepareParams

SPLITS = ("train", "valid", "test")
_CHUNK = 2000      # sentences per spaCy call (progress granularity)


def normalize(line: str) -> str:
    """Unicode NFC, every whitespace run (NBSP, tabs included) one space, no edge spaces."""
    return " ".join(unicodedata.normalize("NFC", line).split())


def read_lines(path: Path) -> list[str]:
    """The normalised lines of a gzip (or plain) text file; bad UTF-8 or an empty line names file and line."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read().split(b"\n")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if raw and raw[-1] == b"":
        raw.pop()
    out = []
    for i, b in enumerate(raw, 1):
        try:
            s = normalize(b.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: line {i}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
        if not s:
            raise DataError(f"{path}: line {i}: empty sentence (every line must hold one)")
        out.append(s)
    return out


def read_parallel(src: Path, stem: str, langs=LANGS) -> dict[str, list[str]]:
    """Both sides of one split; different line counts name both files."""
    sides = {lang: read_lines(src / f"{stem}.{lang}.gz") for lang in langs}
    counts = {lang: len(v) for lang, v in sides.items()}
    if len(set(counts.values())) > 1:
        a, b = langs
        raise DataError(f"{src / f'{stem}.{a}.gz'} has {counts[a]} lines but {src / f'{stem}.{b}.gz'} "
                        f"has {counts[b]}: the files of a parallel split must align line by line")
    return sides


# lesson 11's filters: English "Wh...?" questions, French one-sentence questions
_Q_EN = re.compile(r"^(Wh[^?.!]+\?)")
_Q_FR = re.compile(r"^([^?.!]+\?)")


def _archive_lines(archive: Path, suffix: str, desc: str):
    """(line number from 1, normalised line) of the archive member ending with ``suffix``, streamed."""
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                if member.isfile() and member.name.endswith(suffix):
                    with tf.extractfile(member) as fh:
                        for i, b in enumerate(tqdm(fh, desc=desc, unit=" lines", mininterval=5), 1):
                            yield i, normalize(b.decode("utf-8", errors="replace"))
                    return
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{archive}: truncated or corrupt archive ({e})") from None
    raise DataError(f"{archive}: no member ending in {suffix!r} (expected giga-fren.release2.fixed{suffix})")


def question_pairs(archive: Path) -> dict[str, list[str]]:
    """The lecture's question pairs from giga-fren (English and French sides, aligned)."""
    en = {i: m.group(1) for i, line in _archive_lines(archive, ".en", "giga-fren en") if (m := _Q_EN.match(line))}
    pairs = {"fr": [], "en": []}
    for i, line in _archive_lines(archive, ".fr", "giga-fren fr"):
        if i in en and (m := _Q_FR.match(line)):
            pairs["fr"].append(m.group(1))
            pairs["en"].append(en[i])
    if not pairs["en"]:
        raise DataError(f"{archive}: no question pairs found")
    return pairs


def holdout_splits(pairs: dict[str, list[str]], holdout: float, seed: int) -> dict[str, dict[str, list[str]]]:
    """Seeded valid/test sets of ``holdout`` of the pairs each, training the rest; original order kept."""
    n = len(pairs["en"])
    k = max(1, int(round(holdout * n)))
    perm = np.random.default_rng(seed).permutation(n)
    parts = {"valid": np.sort(perm[:k]), "test": np.sort(perm[k:2 * k]), "train": np.sort(perm[2 * k:])}
    return {split: {lang: [pairs[lang][i] for i in idx] for lang in pairs} for split, idx in parts.items()}


def read_splits(src: Path, p: PrepareParams) -> dict[str, dict[str, list[str]]]:
    """split -> language -> sentences, from a directory of parallel files or the giga-fren archive."""
    if Path(src).is_file():
        return holdout_splits(question_pairs(Path(src)), p.holdout, p.seed)
    missing = [s for s in SPLITS if s not in p.splits]
    if missing or set(p.splits) - set(SPLITS):
        raise DataError(f"seq2seq.prepare.splits: expected exactly the keys {list(SPLITS)}, got {sorted(p.splits)}")
    return {split: read_parallel(Path(src), p.splits[split]) for split in SPLITS}


def tokenize_side(lines: list[str], lang: str) -> list[list[str]]:
    """fastai's rules + spaCy's blank tokenizer of ``lang`` (rule-based: no model to download)."""
    import spacy

    tok = spacy.blank(lang).tokenizer
    out: list[list[str]] = []
    for i in tqdm(range(0, len(lines), _CHUNK), desc=f"tokenize {lang}", unit=" chunks", mininterval=2):
        out.extend(tokenize_texts(lines[i:i + _CHUNK], tok))
    return out


def keep_pairs(toks: dict[str, list[list[str]]], max_tokens: int | None) -> np.ndarray:
    """Indices of pairs whose every side has at most ``max_tokens`` tokens (xxbos not counted)."""
    n = len(next(iter(toks.values())))
    if max_tokens is None:
        return np.arange(n)
    ok = np.ones(n, dtype=bool)
    for side in toks.values():
        ok &= np.array([len(t) - 1 <= max_tokens for t in side], dtype=bool)
    return np.flatnonzero(ok)


def write_store(out: Path, docs: list[list[str]]) -> None:
    out.mkdir(parents=True)
    (out / "tokens.bin").write_bytes(encode_tokens(docs))
    np.save(out / "lengths.npy", np.array([len(d) for d in docs], dtype=np.int64))
    np.save(out / "labels.npy", np.zeros(len(docs), dtype=np.int64))


def prepare_pairs(*, src: Path, out: Path, p: PrepareParams) -> dict:
    """Read, check, normalise, tokenize and cap the pairs of each split; returns counts per split."""
    metrics: dict = {}
    all_sides = read_splits(Path(src), p)
    with atomic_dir(out) as tmp:
        for split in SPLITS:
            sides = all_sides[split]
            if split != "train" and p.max_eval is not None:
                sides = {k: v[:p.max_eval] for k, v in sides.items()}
            toks = {lang: tokenize_side(lines, lang) for lang, lines in sides.items()}
            keep = keep_pairs(toks, p.max_tokens if split == "train" else None)
            n_capped = len(toks[LANGS[0]]) - len(keep)
            if split == "train" and p.max_train is not None and p.max_train < len(keep):
                keep = np.sort(np.random.default_rng(p.seed).choice(keep, size=p.max_train, replace=False))
            if not len(keep):
                raise DataError(f"{src}: split {split!r} has no pair within "
                                f"seq2seq.prepare.max_tokens={p.max_tokens}")
            m = {"pairs_read": len(toks[LANGS[0]]), "dropped_over_cap": n_capped, "pairs": len(keep)}
            for lang in LANGS:
                docs = [toks[lang][i] for i in keep]
                write_store(tmp / lang / split, docs)
                (tmp / "text").mkdir(exist_ok=True)
                (tmp / "text" / f"{split}.{lang}").write_text("".join(sides[lang][i] + "\n" for i in keep), encoding="utf-8")
                m[f"tokens_{lang}"] = int(sum(len(d) for d in docs))
                m[f"max_len_{lang}"] = int(max(len(d) for d in docs)) - 1
            metrics[split] = m
    return metrics
