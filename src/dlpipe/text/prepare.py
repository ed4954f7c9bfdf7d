"""Normalise IMDb into no-header ``label,text`` CSVs: a classifier set and a language-model set.

Output (``out_dir``)::

    clas/train.csv  clas/valid.csv  clas/classes.txt    labels = indices into classes.txt
    lm/train.csv    lm/valid.csv                        label 0, a seeded 90/10 split of texts

Two raw layouts are read: fastai's ``imdb_sample`` (``train.csv``, ``valid.csv``, ``classes.txt``)
and the full IMDb folders (``train/{neg,pos}/*.txt``, ``test/{neg,pos}/*.txt``, ``unsup/*.txt`` or
``train/unsup/*.txt``).
The held-out reviews (``valid.csv`` / ``test/``) are the classifier's validation set and,
unless ``include_test_texts``, never enter the LM corpus.
"""
from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from dlpipe.errors import DataError
from dlpipe.io.atomic import atomic_dir

Row = tuple[int, str]  # (label index, text)


@dataclass(frozen=True)
class PrepareParams:
    split_seed: int
    lm_valid_pct: float = field(metadata=dict(gt=0.0, lt=1.0))
    n_train: int | None = field(metadata=dict(ge=1))       # labelled reviews kept (null = all)
    max_docs: int | None = field(metadata=dict(ge=1))      # cap per raw source (tiny scale)
    include_unsup: bool
    include_test_texts: bool


# ---- reading and validating --------------------------------------------------------------------

def read_classes(path: Path) -> list[str]:
    """Non-empty lines of classes.txt, unique."""
    if not path.is_file():
        raise DataError(f"{path}: classes file not found")
    classes = [c.strip() for c in path.read_text(encoding="utf-8").splitlines() if c.strip()]
    if not classes:
        raise DataError(f"{path}: no class names")
    dup = [c for c, n in Counter(classes).items() if n > 1]
    if dup:
        raise DataError(f"{path}: class {dup[0]!r} listed twice")
    return classes


def read_labelled_csv(path: Path, classes: list[str]) -> list[Row]:
    """Rows of a no-header ``label,text`` CSV, each checked; errors name the file and row.

    A label is an integer index into ``classes`` or one of the class names.
    """
    if not path.is_file():
        raise DataError(f"{path}: CSV not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        prefix = data[:e.start].decode("utf-8", errors="replace")
        row = len(list(csv.reader(io.StringIO(prefix)))) + (prefix.endswith("\n") or not prefix)
        raise DataError(f"{path}: row {row}: not UTF-8 (byte {e.start}: {data[e.start:e.start + 1]!r})") from None
    names = {c: i for i, c in enumerate(classes)}
    rows: list[Row] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for n, rec in enumerate(reader, 1):
            rows.append(_check_row(rec, names, f"{path}: row {n} (line {reader.line_num})"))
    except csv.Error as e:
        raise DataError(f"{path}: row {len(rows) + 1}: malformed CSV: {e}") from None
    if not rows:
        raise DataError(f"{path}: no rows (expected no-header 'label,text' lines)")
    return rows


def _check_row(rec: list[str], names: dict[str, int], where: str) -> Row:
    if len(rec) != 2:
        raise DataError(f"{where}: expected 2 columns (label,text), got {len(rec)}")
    label, text = rec
    if not text.strip():
        raise DataError(f"{where}: empty text")
    if label in names:
        return names[label], text
    try:
        idx = int(label)
    except ValueError:
        idx = -1
    if not 0 <= idx < len(names):
        raise DataError(f"{where}: label {label[:40]!r} is not a class of classes.txt "
                        f"(expected 0..{len(names) - 1} or one of {list(names)})")
    return idx, text


def read_text_folder(folder: Path) -> list[str]:
    """Texts of ``folder/*.txt`` in file-name order; a bad file is named in the error."""
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DataError(f"{folder}: no .txt files")
    texts = []
    for f in files:
        try:
            t = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{f}: not UTF-8 (byte {e.start})") from None
        if not t.strip():
            raise DataError(f"{f}: empty text")
        texts.append(t)
    return texts


def load_imdb(src: Path) -> tuple[list[str], list[Row], list[Row], list[str]]:
    """(classes, labelled train rows, held-out rows, unlabelled texts) from either raw layout."""
    if (src / "train.csv").is_file():
        classes = read_classes(src / "classes.txt")
        return (classes, read_labelled_csv(src / "train.csv", classes),
                read_labelled_csv(src / "valid.csv", classes), [])
    if (src / "train" / "neg").is_dir():
        classes = ["neg", "pos"]
        train = [(i, t) for i, c in enumerate(classes) for t in read_text_folder(src / "train" / c)]
        test = [(i, t) for i, c in enumerate(classes) for t in read_text_folder(src / "test" / c)]
        # fastai's imdb.tgz has unsup/ at the top; Stanford's aclImdb has train/unsup/
        unsup_dir = next((d for d in (src / "unsup", src / "train" / "unsup") if d.is_dir()), None)
        unsup = read_text_folder(unsup_dir) if unsup_dir else []
        return classes, train, test, unsup
    raise DataError(f"{src}: expected fastai's imdb_sample (train.csv, valid.csv, classes.txt) "
                    f"or the IMDb folders (train/neg, train/pos, test/neg, test/pos)")


# ---- sampling and writing ----------------------------------------------------------------------

def seeded_subset(items: list, n: int | None, rng: np.random.Generator) -> list:
    """``n`` items drawn without replacement, kept in their original order (all if n is None)."""
    if n is None or n >= len(items):
        return list(items)
    keep = np.sort(rng.choice(len(items), size=n, replace=False))
    return [items[i] for i in keep]


def balanced_subset(rows: list[Row], n: int, n_classes: int, rng: np.random.Generator) -> list[Row]:
    """``n`` rows with classes as equal as possible (the first n % n_classes classes get one more)."""
    out: list[int] = []
    for c in range(n_classes):
        idx = [i for i, (lab, _) in enumerate(rows) if lab == c]
        want = n // n_classes + (c < n % n_classes)
        if want > len(idx):
            raise DataError(f"n_train={n} needs {want} reviews of class {c}, only {len(idx)} available")
        out.extend(rng.choice(idx, size=want, replace=False).tolist())
    return [rows[i] for i in sorted(out)]


def write_label_csv(path: Path, rows: Iterable[Row]) -> int:
    """Write no-header ``label,text`` rows (quoted where needed); returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        for label, text in rows:
            w.writerow((label, text))
            n += 1
    return n


def prepare_imdb(src: str | os.PathLike, out_dir: str | os.PathLike, p: PrepareParams) -> dict:
    """Raw IMDb -> ``clas/`` and ``lm/`` CSV sets in ``out_dir`` (written atomically).

    Returns:
        metrics: row counts of each output CSV, labelled reviews per class, and the LM sources.
    """
    rng = np.random.default_rng(p.split_seed)
    classes, train, held_out, unsup = load_imdb(Path(src))
    train, held_out = seeded_subset(train, p.max_docs, rng), seeded_subset(held_out, p.max_docs, rng)
    unsup = seeded_subset(unsup, p.max_docs, rng) if p.include_unsup else []
    clas_train = balanced_subset(train, p.n_train, len(classes), rng) if p.n_train else train
    # The LM learns from every review text we may use without labels: all labelled-train texts
    # (also in low-label runs), the unsup reviews, and the held-out ones only if asked to.
    lm_texts = [t for _, t in train] + unsup + ([t for _, t in held_out] if p.include_test_texts else [])
    order = rng.permutation(len(lm_texts))
    n_valid = max(1, round(len(lm_texts) * p.lm_valid_pct))
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / "clas").mkdir()
        (tmp / "clas" / "classes.txt").write_text("".join(c + "\n" for c in classes), encoding="utf-8")
        m = {"clas_train": write_label_csv(tmp / "clas" / "train.csv", clas_train),
             "clas_valid": write_label_csv(tmp / "clas" / "valid.csv", held_out),
             "lm_train": write_label_csv(tmp / "lm" / "train.csv", ((0, lm_texts[i]) for i in order[n_valid:])),
             "lm_valid": write_label_csv(tmp / "lm" / "valid.csv", ((0, lm_texts[i]) for i in order[:n_valid]))}
    counts = Counter(lab for lab, _ in clas_train)
    m["clas_train_per_class"] = {c: counts.get(i, 0) for i, c in enumerate(classes)}
    m["lm_sources"] = {"train_texts": len(train), "unsup_texts": len(unsup),
                       "held_out_texts": len(held_out) if p.include_test_texts else 0}
    return m
