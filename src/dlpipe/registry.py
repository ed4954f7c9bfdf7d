"""The dataset registry: what each dataset is, where its files come from and how to check them.

The facts live in ``datasets.yaml`` (package data); this module parses and validates them once
into frozen dataclasses::

    ds = registry.get("imdb_sample")
    ds.files[0].url, ds.files[0].algo, ds.files[0].digest      # pinned URL + publisher checksum
    [d.name for d in registry.all() if d.scale == "full"]

A file may have more than one verified source (``FileSpec.sources``): the publisher's URL with its
checksum and, say, a mirror's repack of the same content with a checksum of its own. A dataset's
``content`` check (a digest over the archive's member files) then proves that whichever source was
fetched, the user has the same data; a source whose bytes are not pinned (a code host's generated
archive) is accepted on that check alone.
"""
from __future__ import annotations

import builtins
import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath
from typing import Literal

import yaml

from dlpipe.core.errors import DataError, ParamsError

ALGOS = ("sha256", "sha1", "md5")
HEX_LEN = {"sha256": 64, "sha1": 40, "md5": 32}
SOURCE = "dlpipe/datasets.yaml"


@dataclass(frozen=True)
class Source:
    """One place a file's bytes come from, and how they are verified.

    ``url`` is public ("" when only mirrors hold it); ``mirror`` is its path inside
    ``<mirror>/<dataset>/``. ``algo``/``digest`` pin the bytes; None means the bytes are not pinned
    and the dataset's content check alone verifies them.
    """

    url: str
    mirror: str | None
    algo: Literal["sha256", "sha1", "md5"] | None
    digest: str | None
    bytes: int | None
    strip: int = 0
    how: str = ""       # what this source is (e.g. how a repack was made)

    @property
    def pinned(self) -> bool:
        return self.digest is not None


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset: ``path`` is relative to ``data/raw/<name>/`` and to ``<mirror>/<name>/``.

    The fields url/algo/digest/bytes/strip describe its primary source; ``alt`` lists other verified
    sources of the same content, all stored locally as ``path``.
    """

    path: str
    url: str
    algo: Literal["sha256", "sha1", "md5"] | None
    digest: str | None
    bytes: int | None
    extract: Literal["tar", "zip"] | None = None
    strip: int = 0  # leading path components dropped from archive members (tar --strip-components)
    mirror: str | None = ""          # the primary source's path in a mirror ("": same as ``path``; None: none)
    alt: tuple[Source, ...] = ()
    optional: bool = False           # a fetch failure is reported, not fatal (e.g. a listing only mirrors hold)
    how: str = ""                    # what the primary source is

    @property
    def sources(self) -> tuple[Source, ...]:
        primary = Source(self.url, self.path if self.mirror == "" else self.mirror, self.algo, self.digest,
                         self.bytes, self.strip, self.how)
        return (primary, *self.alt)


@dataclass(frozen=True)
class ContentCheck:
    """A digest over an archive's member files that holds for every source of the archive.

    ``sha256`` is the sha256 of the text ``sha256sum`` prints for the member files matching ``include``
    (fnmatch patterns over member paths after the source's ``strip``), one ``<hex>  <path>`` line per
    file, sorted by path in byte order. ``listing`` names the dataset file holding that expected text
    (gzip allowed): with it, a mismatch names the first differing file.
    """

    archive: str
    include: tuple[str, ...]
    sha256: str
    listing: str | None = None


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    scale: Literal["sample", "full"]
    license: str
    citation: str
    files: tuple[FileSpec, ...]
    task: str = ""
    terms: str = ""  # the long form of the licence / terms of use
    upstream: str = ""
    notes: str = ""
    content: ContentCheck | None = None

    @property
    def total_bytes(self) -> int | None:
        """Sum of the files' sizes, or None when a publisher gives no size for some file."""
        sizes = [f.bytes for f in self.files]
        return None if None in sizes else sum(sizes)


class UnknownDataset(ParamsError, KeyError):
    """A dataset name not in the registry (params name them); the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


def get(name: str) -> Dataset:
    """The dataset called ``name``; an unknown name fails listing every known one."""
    table = _load()
    if name not in table:
        raise UnknownDataset(f"unknown dataset '{name}' (known datasets: {', '.join(sorted(table))})")
    return table[name]


def all() -> list[Dataset]:  # noqa: A001 - the registry's natural verb; shadowing is local to the module
    """Every registered dataset, in registry order."""
    return list(_load().values())


@functools.cache
def _load() -> dict[str, Dataset]:
    text = resources.files("dlpipe").joinpath("datasets.yaml").read_text(encoding="utf-8")
    return parse(yaml.safe_load(text), SOURCE)


def parse(data: object, source: str = SOURCE) -> dict[str, Dataset]:
    """Validate a registry document (``{datasets: {name: {...}}}``) into Dataset objects."""
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), dict):
        raise DataError(f"{source}: expected a mapping with a 'datasets' mapping at the top level")
    out = {}
    for name, entry in data["datasets"].items():
        where = f"{source}: datasets.{name}"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected a mapping, got {type(entry).__name__}")
        files = entry.get("files")
        if not isinstance(files, list) or not files:
            raise DataError(f"{where}.files: expected a non-empty list of files")
        specs = tuple(_file_spec(f, f"{where}.files[{i}]") for i, f in enumerate(files))
        if entry.get("scale") not in ("sample", "full"):
            raise DataError(f"{where}.scale: expected 'sample' or 'full', got {entry.get('scale')!r}")
        for key in ("title", "license", "citation"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise DataError(f"{where}.{key}: expected a non-empty string")
        extra = {k: str(entry.get(k, "")) for k in ("task", "terms", "upstream", "notes")}
        content = _content(entry.get("content"), specs, f"{where}.content")
        for i, spec in enumerate(specs):
            if any(not s.pinned for s in spec.sources) and (content is None or content.archive != spec.path):
                raise DataError(f"{where}.files[{i}]: a source with 'verify: content' needs the dataset's "
                                f"content check on this file (content.archive: {spec.path})")
        out[name] = Dataset(name=name, title=entry["title"], scale=entry["scale"], license=entry["license"],
                            citation=entry["citation"], files=specs, content=content, **extra)
    return out


def _content(c: object, specs: tuple[FileSpec, ...], where: str) -> ContentCheck | None:
    if c is None:
        return None
    if not isinstance(c, dict):
        raise DataError(f"{where}: expected a mapping with archive/include/sha256")
    paths = {f.path for f in specs}
    archive, listing = c.get("archive"), c.get("listing")
    if archive not in paths:
        raise DataError(f"{where}.archive: expected one of the dataset's files {sorted(paths)}, got {archive!r}")
    if listing is not None and listing not in paths:
        raise DataError(f"{where}.listing: expected one of the dataset's files {sorted(paths)}, got {listing!r}")
    include = c.get("include")
    if not isinstance(include, list) or not include or not builtins.all(isinstance(g, str) and g for g in include):
        raise DataError(f"{where}.include: expected a non-empty list of glob patterns")
    digest = str(c.get("sha256", "")).lower()
    if not re.fullmatch("[0-9a-f]{64}", digest):
        raise DataError(f"{where}.sha256: expected 64 hex digits, got {c.get('sha256')!r}")
    return ContentCheck(archive=archive, include=tuple(include), sha256=digest, listing=listing)


def _file_spec(f: object, where: str) -> FileSpec:
    if not isinstance(f, dict):
        raise DataError(f"{where}: expected a mapping with path/url/checksum")
    path = f.get("path")
    if not isinstance(path, str) or not _safe_relpath(path):
        raise DataError(f"{where}.path: expected a relative path without '..', got {path!r}")
    if f.get("extract") not in (None, "tar", "zip"):
        raise DataError(f"{where}.extract: expected 'tar', 'zip' or nothing, got {f['extract']!r}")
    primary = _source({**f, "mirror": f.get("mirror", path if f.get("url") else None)}, where)
    alt = f.get("alt", [])
    if not isinstance(alt, list):
        raise DataError(f"{where}.alt: expected a list of sources")
    alts = tuple(_source(a, f"{where}.alt[{i}]") for i, a in enumerate(alt))
    optional = f.get("optional", False)
    if not isinstance(optional, bool):
        raise DataError(f"{where}.optional: expected true or false, got {optional!r}")
    return FileSpec(path=path, url=primary.url, algo=primary.algo, digest=primary.digest, bytes=primary.bytes,
                    extract=f.get("extract"), strip=primary.strip,
                    mirror="" if primary.mirror == path else primary.mirror, alt=alts, optional=optional,
                    how=primary.how)


def _source(f: object, where: str) -> Source:
    """One source: url and/or mirror path; exactly one checksum key, or ``verify: content``."""
    if not isinstance(f, dict):
        raise DataError(f"{where}: expected a mapping with url/mirror and a checksum")
    algos = [a for a in ALGOS if a in f]
    by_content = f.get("verify") == "content"
    if len(algos) != (0 if by_content else 1):
        want = "no checksum key with verify: content" if by_content else f"exactly one checksum key of {list(ALGOS)}"
        raise DataError(f"{where}: expected {want}, got {algos}")
    algo = algos[0] if algos else None
    digest = str(f[algo]).lower() if algo else None
    if algo and not re.fullmatch(f"[0-9a-f]{{{HEX_LEN[algo]}}}", digest):
        raise DataError(f"{where}.{algo}: expected {HEX_LEN[algo]} hex digits, got {f[algo]!r}")
    url, mirror = f.get("url", ""), f.get("mirror")
    if url and (not isinstance(url, str) or not re.match(r"(https?|file)://", url)):
        raise DataError(f"{where}.url: expected an http(s):// or file:// URL, got {url!r}")
    if mirror is not None and (not isinstance(mirror, str) or not _safe_relpath(mirror)):
        raise DataError(f"{where}.mirror: expected a relative path without '..', got {mirror!r}")
    if not url and mirror is None:
        raise DataError(f"{where}.url: expected an http(s):// or file:// URL (or a mirror path), got nothing")
    size, strip = f.get("bytes"), f.get("strip", 0)
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise DataError(f"{where}.bytes: expected a byte count >= 0, got {size!r}")
    if not isinstance(strip, int) or isinstance(strip, bool) or strip < 0:
        raise DataError(f"{where}.strip: expected an integer >= 0, got {strip!r}")
    return Source(url=url or "", mirror=mirror, algo=algo, digest=digest, bytes=size, strip=strip,
                  how=str(f.get("how", "")))


def _safe_relpath(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts and "\\" not in path
