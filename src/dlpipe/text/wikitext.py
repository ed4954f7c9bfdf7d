"""The pretraining corpus: WikiText articles (+ optional other English text) as ``label,text`` CSVs.

Output (``out_dir``): ``train.csv`` and ``valid.csv``, label 0, one article/document per row, so
the same tokenize stage applies. ``valid`` is a seeded set of whole articles from one WikiText
file (WikiText-2's test split at sample scale, WikiText-103's valid split at full scale); those
articles never enter ``train``. No IMDb text is used here at all.
"""
from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlpipe.errors import DataError
from dlpipe.io.atomic import atomic_dir
from dlpipe.text.prepare import seeded_subset, write_label_csv

# An article starts at a level-1 heading line " = Title = "; " = = Section = = " does not.
_re_article = re.compile(r"^ = (?!=).*(?<!=) = $")
_SHAKESPEARE_DOC_CHARS = 2000  # speeches merged up to about a short article, not one per xxbos

WIKITEXT_FIXES = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), ("<unk>", "xxunk"))


@dataclass(frozen=True)
class LMCorpusParams:
    split_seed: int
    wikitext_train: list[str] = field(metadata=dict(nonempty=True))  # file names in the WikiText dir
    heldout_from: str                                                 # file whose articles give valid
    n_heldout_articles: int | None = field(metadata=dict(ge=1))      # null = all its articles
    shakespeare: bool
    multi30k_files: list[str]                                         # English caption files (.en.gz)
    max_docs: int | None = field(metadata=dict(ge=1))                # cap per source (tiny scale)


def normalize_wikitext(text: str) -> str:
    """Undo WikiText's tokenization marks: ``1 @,@ 000`` -> ``1,000``, ``<unk>`` -> ``xxunk``."""
    for old, new in WIKITEXT_FIXES:
        text = text.replace(old, new)
    return text


def split_articles(lines: list[str]) -> list[str]:
    """WikiText lines -> one normalised text per article (heading included, blank lines dropped)."""
    articles: list[list[str]] = []
    for line in lines:
        line = line.rstrip("\n")
        if _re_article.match(line) or not articles:
            articles.append([])
        if line.strip():
            articles[-1].append(normalize_wikitext(line.strip()))
    return ["\n".join(a) for a in articles if a]


def read_wikitext(path: Path) -> list[str]:
    """Articles of one ``wiki.*.tokens`` file."""
    if not path.is_file():
        raise DataError(f"{path}: WikiText file not found")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines(): U+2028 is text here
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte {e.start})") from None
    articles = split_articles(lines)
    if not articles:
        raise DataError(f"{path}: no articles (expected ' = Title = ' heading lines)")
    return articles


def read_shakespeare(path: Path) -> list[str]:
    """Blank-line-separated speeches, merged into documents of about 2000 characters."""
    if not path.is_file():
        raise DataError(f"{path}: text file not found")
    docs, cur = [], ""
    for speech in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        cur = f"{cur}\n\n{speech.strip()}" if cur else speech.strip()
        if len(cur) >= _SHAKESPEARE_DOC_CHARS:
            docs.append(cur)
            cur = ""
    return docs + ([cur] if cur else [])


def read_captions(path: Path) -> list[str]:
    """One document per caption line of a gzipped text file."""
    if not path.is_file():
        raise DataError(f"{path}: caption file not found")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def prepare_lm_corpus(wikitext_dir: str | os.PathLike, out_dir: str | os.PathLike, p: LMCorpusParams,
                      shakespeare: str | os.PathLike | None = None,
                      multi30k_dir: str | os.PathLike | None = None) -> dict:
    """Build ``train.csv``/``valid.csv`` of the pretraining corpus in ``out_dir`` (atomically).

    Returns:
        metrics: documents and characters per source and split.
    """
    wt, rng = Path(wikitext_dir), np.random.default_rng(p.split_seed)
    pool = read_wikitext(wt / p.heldout_from)
    n_held = len(pool) if p.n_heldout_articles is None else min(p.n_heldout_articles, len(pool) - 1)
    held = set(rng.choice(len(pool), size=n_held, replace=False).tolist())
    valid = seeded_subset([a for i, a in enumerate(pool) if i in held], p.max_docs, rng)
    sources: dict[str, list[str]] = {}
    for name in p.wikitext_train:
        arts = pool if name == p.heldout_from else read_wikitext(wt / name)
        if name == p.heldout_from:
            arts = [a for i, a in enumerate(arts) if i not in held]
        sources[name] = seeded_subset(arts, p.max_docs, rng)
    if p.shakespeare:
        if shakespeare is None:
            raise ValueError("shakespeare: true in params but no --shakespeare file given")
        sources["tinyshakespeare"] = seeded_subset(read_shakespeare(Path(shakespeare)), p.max_docs, rng)
    for name in p.multi30k_files:
        if multi30k_dir is None:
            raise ValueError("multi30k_files set in params but no --multi30k directory given")
        sources[f"multi30k/{name}"] = seeded_subset(read_captions(Path(multi30k_dir) / name), p.max_docs, rng)
    train = [t for docs in sources.values() for t in docs]
    with atomic_dir(out_dir) as tmp:
        write_label_csv(tmp / "train.csv", ((0, t) for t in train))
        write_label_csv(tmp / "valid.csv", ((0, t) for t in valid))
    m = {f"train/{k}": {"docs": len(v), "chars": sum(map(len, v))} for k, v in sources.items()}
    m["train"] = {"docs": len(train), "chars": sum(map(len, train))}
    m["valid"] = {"docs": len(valid), "chars": sum(map(len, valid))}
    return m
