"""Content checks: a digest over an archive's member files that holds whichever source it came from.

The digest is the sha256 of the text ``sha256sum`` prints for the selected members, one
``<hex>  <path>`` line per file, sorted by path in byte order (``LC_ALL=C sort``)::

    55e390cd...  aclImdb/test/neg/0_2.txt
    c5f993f1...  aclImdb/test/neg/10000_4.txt

A repack and the official tarball differ as files but hold the same member bytes, so both give the
same digest. With the expected listing at hand, a mismatch names the first differing file.
"""
from __future__ import annotations

import fnmatch
import gzip
import hashlib
import tarfile
import zlib
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from dlpipe.core.errors import DataError
from dlpipe.io.extract import member_parts

Listing = list[tuple[str, str]]   # (path, sha256 hex), sorted by path bytes


def matches(path: str, patterns: Iterable[str]) -> bool:
    """fnmatch per path component: ``train/*/*.jpg`` matches ``train/cat/0001.jpg``, not ``train/a/b/c.jpg``."""
    parts = path.split("/")
    for pat in patterns:
        pp = pat.split("/")
        if len(pp) == len(parts) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pp)):
            return True
    return False


def archive_listing(archive: Path, include: Iterable[str], strip: int = 0, progress: bool = True,
                    total: int | None = None) -> Listing:
    """sha256 of every regular member matching ``include`` (paths after ``strip``), streamed, sorted."""
    include = tuple(include)
    rows = []
    try:
        with tarfile.open(archive, mode="r|*") as tar, \
                tqdm(total=total, desc=f"verify {Path(archive).name}", unit="file", disable=not progress,
                     mininterval=0.5) as bar:
            for m in tar:
                if not m.isfile():
                    continue
                parts = member_parts(Path(archive), m.name, strip)
                rel = "/".join(parts) if parts else ""
                if rel and matches(rel, include):
                    rows.append((rel, hashlib.sha256(tar.extractfile(m).read()).hexdigest()))
                    bar.update(1)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{archive}: truncated or corrupt tar archive ({e})") from None
    rows.sort(key=lambda r: r[0].encode())
    return rows


def listing_text(rows: Listing) -> bytes:
    return "".join(f"{h}  {p}\n" for p, h in rows).encode()


def listing_digest(rows: Listing) -> str:
    return hashlib.sha256(listing_text(rows)).hexdigest()


def read_listing(path: Path) -> Listing:
    """A ``sha256sum`` listing (plain or gzip), as rows sorted by path bytes."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    rows = []
    for i, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        h, sep, p = line.partition("  ")
        if not sep or len(h) != 64:
            raise DataError(f"{path}: line {i}: expected '<sha256 hex>  <path>', got {line[:80]!r}")
        rows.append((p, h))
    rows.sort(key=lambda r: r[0].encode())
    return rows


def first_difference(actual: Listing, expected: Listing) -> str:
    """The first path (in byte order) where the two listings differ, said in words."""
    want = dict(expected)
    have = dict(actual)
    for path in sorted(set(want) | set(have), key=str.encode):
        if path not in have:
            return f"{path} is missing"
        if path not in want:
            return f"{path} is not expected"
        if have[path] != want[path]:
            return f"{path} differs (sha256 {have[path]}, expected {want[path]})"
    return "no file differs (the listings agree, so the expected digest is wrong)"


def check_archive(archive: Path, include: Iterable[str], digest: str, strip: int = 0,
                  expected: Path | None = None, progress: bool = True, what: str = "content") -> int:
    """Verify ``archive``'s members against ``digest``; returns how many files were checked.

    Raises DataError naming the first differing file when ``expected`` (the listing) is given,
    else the digests and how to get the listing.
    """
    want = read_listing(expected) if expected is not None and Path(expected).is_file() else None
    rows = archive_listing(archive, include, strip, progress, total=len(want) if want else None)
    got = listing_digest(rows)
    if got == digest:
        return len(rows)
    if want is not None:
        raise DataError(f"{archive}: {what} check failed over {len(rows)} files: {first_difference(rows, want)}")
    raise DataError(f"{archive}: {what} check failed over {len(rows)} files: digest {got}, expected {digest} "
                    "(a mirror's listing file names the first differing file)")
