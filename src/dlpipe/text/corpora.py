"""Readers of raw English corpora, each returning a list of documents (plain strings).

WikiText (articles split at level-1 headings, its tokenisation artefacts undone), Tiny Shakespeare
(speeches merged into ~2,000-character documents) and caption files (one caption per document).
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path

from dlpipe.core.errors import DataError

# An article starts at a level-1 heading line " = Title = "; " = = Section = = " does not.
_re_article = re.compile(r"^ = (?!=).*(?<!=) = $")
_SHAKESPEARE_DOC_CHARS = 2000  # speeches merged up to about a short article, not one per xxbos

WIKITEXT_FIXES = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), ("<unk>", "xxunk"))


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
