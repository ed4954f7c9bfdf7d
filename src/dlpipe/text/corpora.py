"""Readers of raw English corpora.

WikiText (articles split at level-1 headings, its tokenisation artefacts undone), Tiny Shakespeare
(speeches merged into ~2,000-character documents), caption files (one caption per document),
Project Gutenberg books (body text between the START/END markers, cut into documents of whole
paragraphs) and the aclImdb reviews, the last two streamed straight from their archives.
"""
from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
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


# ---- Project Gutenberg books -----------------------------------------------------------------------

_PG_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG", re.I)
_PG_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG", re.I)


@dataclass(frozen=True)
class Book:
    author: str          # the archive's top folder ("Austen, Jane")
    title: str           # the file name without .txt
    body: str            # the text between the START and END markers


def gutenberg_body(text: str, where: str) -> str:
    """The text strictly between a Project Gutenberg book's ``*** START OF`` and ``*** END OF`` lines
    (the licence header and footer are not the book), CRLF turned to LF."""
    lines = text.replace("\r\n", "\n").split("\n")
    start = next((i for i, ln in enumerate(lines) if _PG_START.match(ln)), None)
    end = next((i for i, ln in enumerate(lines) if _PG_END.match(ln)), None)
    if start is None or end is None or end <= start:
        raise DataError(f"{where}: expected a '*** START OF ... PROJECT GUTENBERG' line before an "
                        f"'*** END OF ...' line (found start={start}, end={end})")
    return "\n".join(lines[start + 1:end]).strip()


def paragraphs(body: str) -> list[str]:
    """Blank-line-separated paragraphs, each unwrapped onto one line (PG text is hard-wrapped at ~70)."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]


def book_documents(body: str, words: int) -> list[str]:
    """A book as documents of about ``words`` whitespace words: whole paragraphs, in order, joined by
    blank lines (so a seeded subset of documents samples every part of every book)."""
    docs, cur, n = [], [], 0
    for par in paragraphs(body):
        cur.append(par)
        n += len(par.split())
        if n >= words:
            docs.append("\n\n".join(cur))
            cur, n = [], 0
    return docs + (["\n\n".join(cur)] if cur else [])


def read_gutenberg(archive: Path, progress: bool = True) -> list[Book]:
    """Every ``<Author>/<Title>.txt`` book of the archive, body only, in archive order."""
    books = []
    for name, data in iter_tar_texts(archive, lambda parts: len(parts) == 2 and parts[1].endswith(".txt"),
                                     desc="read books", progress=progress):
        author, file = name.split("/")
        books.append(Book(author, file[:-len(".txt")], gutenberg_body(data, f"{archive}: {name}")))
    if not books:
        raise DataError(f"{archive}: no '<Author>/<Title>.txt' books in the archive")
    return books


# ---- the Large Movie Review Dataset (aclImdb) ---------------------------------------------------

@dataclass(frozen=True)
class Review:
    split: str           # train | test
    label: str           # pos | neg | unsup
    id: int
    rating: int          # 1-4 neg, 7-10 pos, 0 unsup
    text: str


_REVIEW = re.compile(r"^(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")


def read_aclimdb(archive: Path, progress: bool = True) -> list[Review]:
    """Every review of an aclImdb archive (the official tarball or a repack: a top ``aclImdb/`` folder
    holding ``{train,test}/{pos,neg}`` and ``train/unsup``), read straight from the tar.gz."""
    reviews = []
    for name, text in iter_tar_texts(archive, lambda parts: len(parts) == 3, strip=1, desc="read reviews",
                                     progress=progress):
        m = _REVIEW.match(name)
        if m:
            reviews.append(Review(m[1], m[2], int(m[3]), int(m[4]), text))
    if not reviews:
        raise DataError(f"{archive}: no aclImdb/<split>/<label>/<id>_<rating>.txt reviews in the archive")
    return reviews


def iter_tar_texts(archive: Path, keep, strip: int = 0, desc: str = "read", progress: bool = True):
    """``(member path after strip, UTF-8 text)`` of the regular members whose path parts ``keep`` accepts,
    streamed in archive order; a bad archive or a non-UTF-8 member is a DataError naming it."""
    import tarfile
    import zlib

    from tqdm import tqdm

    try:
        with tarfile.open(archive, mode="r|*") as tar, \
                tqdm(desc=desc, unit=" files", disable=not progress, mininterval=1.0) as bar:
            for m in tar:
                parts = m.name.split("/")[strip:]
                if not m.isfile() or not parts or not keep(parts):
                    continue
                raw = tar.extractfile(m).read()
                try:
                    yield "/".join(parts), raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{archive}: member '{m.name}': not UTF-8 (byte {e.start})") from None
                bar.update(1)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{archive}: truncated or corrupt tar archive ({e})") from None
