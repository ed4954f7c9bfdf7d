"""Bench corpora as ``label,text`` CSVs in bench/results/raw/corpora (built once, from the mirror).

- ``imdb_xK.csv``: train.csv + valid.csv of the IMDb sample (1,000 reviews), repeated K times.
- ``wiki.csv``: WikiText-2 valid + test, one document per non-blank line (label 0).
"""
from __future__ import annotations

import csv
import os
import tarfile
from pathlib import Path

from bench.common import RAW, BenchError

CORPORA = RAW / "corpora"


def mirror() -> Path:
    root = Path(os.environ.get("DLPIPE_MIRROR", "/work/shared/data"))
    if not (root / "imdb_sample" / "imdb_sample.tgz").is_file():
        raise BenchError(f"{root}: no imdb_sample/imdb_sample.tgz: set DLPIPE_MIRROR to the data mirror")
    return root


def _imdb_bytes() -> bytes:
    with tarfile.open(mirror() / "imdb_sample" / "imdb_sample.tgz") as tf:
        parts = [tf.extractfile(f"imdb_sample/{n}").read() for n in ("train.csv", "valid.csv")]
    return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)


def imdb(repeat: int) -> Path:
    """The IMDb sample repeated ``repeat`` times."""
    path = CORPORA / f"imdb_x{repeat}.csv"
    if not path.is_file():
        CORPORA.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(_imdb_bytes() * repeat)
        tmp.replace(path)
    return path


def wiki() -> Path:
    """WikiText-2 valid+test lines (blank lines dropped) as documents."""
    path = CORPORA / "wiki.csv"
    if not path.is_file():
        CORPORA.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            w = csv.writer(out)
            for name in ("wiki.valid.tokens", "wiki.test.tokens"):
                for line in open(mirror() / "wikitext-2" / name, encoding="utf-8"):
                    if line.strip():
                        w.writerow([0, line.rstrip("\n")])
        tmp.replace(path)
    return path


def read_texts(path: Path) -> list[str]:
    """The text column of a bench CSV (the same texts every implementation sees)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return [row[1] for row in csv.reader(fh)]


def count_words(path: Path) -> int:
    """Whitespace-split words of the texts: the unit of words/s."""
    return sum(len(t.split()) for t in read_texts(path))
