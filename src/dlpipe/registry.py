"""The dataset registry: what each dataset is, where its files come from and how to check them.

The facts live in ``datasets.yaml`` (package data); this module parses and validates them once
into frozen dataclasses::

    ds = registry.get("imdb_sample")
    ds.files[0].url, ds.files[0].algo, ds.files[0].digest      # pinned URL + publisher checksum
    [d.name for d in registry.all() if d.scale == "full"]
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath
from typing import Literal

import yaml

from dlpipe.errors import DataError

ALGOS = ("sha256", "sha1", "md5")
HEX_LEN = {"sha256": 64, "sha1": 40, "md5": 32}
SOURCE = "dlpipe/datasets.yaml"


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset: ``path`` is relative to ``data/raw/<name>/`` and to ``<mirror>/<name>/``."""

    path: str
    url: str
    algo: Literal["sha256", "sha1", "md5"]
    digest: str
    bytes: int | None
    extract: Literal["tar", "zip"] | None = None
    strip: int = 0  # leading path components dropped from archive members (tar --strip-components)


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

    @property
    def total_bytes(self) -> int | None:
        """Sum of the files' sizes, or None when a publisher gives no size for some file."""
        sizes = [f.bytes for f in self.files]
        return None if None in sizes else sum(sizes)


class UnknownDataset(KeyError):
    """A dataset name not in the registry; the message lists the known names."""

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
        out[name] = Dataset(name=name, title=entry["title"], scale=entry["scale"], license=entry["license"],
                            citation=entry["citation"], files=specs, **extra)
    return out


def _file_spec(f: object, where: str) -> FileSpec:
    if not isinstance(f, dict):
        raise DataError(f"{where}: expected a mapping with path/url/checksum")
    algos = [a for a in ALGOS if a in f]
    if len(algos) != 1:
        raise DataError(f"{where}: expected exactly one checksum key of {list(ALGOS)}, got {algos}")
    algo = algos[0]
    digest = str(f[algo]).lower()
    if not re.fullmatch(f"[0-9a-f]{{{HEX_LEN[algo]}}}", digest):
        raise DataError(f"{where}.{algo}: expected {HEX_LEN[algo]} hex digits, got {f[algo]!r}")
    path = f.get("path")
    if not isinstance(path, str) or not _safe_relpath(path):
        raise DataError(f"{where}.path: expected a relative path without '..', got {path!r}")
    url = f.get("url")
    if not isinstance(url, str) or not re.match(r"(https?|file)://", url):
        raise DataError(f"{where}.url: expected an http(s):// or file:// URL, got {url!r}")
    if f.get("extract") not in (None, "tar", "zip"):
        raise DataError(f"{where}.extract: expected 'tar', 'zip' or nothing, got {f['extract']!r}")
    size, strip = f.get("bytes"), f.get("strip", 0)
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise DataError(f"{where}.bytes: expected a byte count >= 0, got {size!r}")
    if not isinstance(strip, int) or isinstance(strip, bool) or strip < 0:
        raise DataError(f"{where}.strip: expected an integer >= 0, got {strip!r}")
    return FileSpec(path=path, url=url, algo=algo, digest=digest, bytes=size, extract=f.get("extract"), strip=strip)


def _safe_relpath(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts and "\\" not in path
