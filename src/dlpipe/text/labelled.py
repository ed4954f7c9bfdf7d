"""Labelled text sets as no-header ``label,text`` CSVs: reading (every row checked), sampling, writing.

``classes.txt`` lists the class names, one per line; a label is an index into it (or a name).
Every error names the file and the row.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np

from dlpipe.core.errors import DataError

Row = tuple[int, str]  # (label index, text)


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


def normalize_space(text: str) -> str:
    """The form texts are compared in: runs of whitespace as one space, no leading/trailing space."""
    return " ".join(text.split())


def drop_equal(rows: list, banned: set[str], text=lambda r: r[1]) -> tuple[list, int]:
    """``rows`` without those whose text equals (after :func:`normalize_space`) one of ``banned``
    (already normalised): every corpus a model learns from leaves the evaluation texts out.
    Returns (kept rows, how many were dropped)."""
    kept = [r for r in rows if normalize_space(text(r)) not in banned]
    return kept, len(rows) - len(kept)
