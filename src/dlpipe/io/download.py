"""Registry-driven dataset download: mirror first, checksum before rename, safe extraction.

``fetch_dataset("imdb_sample")`` writes ``data/raw/imdb_sample/<file path>`` for every file in
the registry entry, then extracts the archives into the same directory::

    data/raw/imdb_sample/
        imdb_sample.tgz          # the verified download (kept: it is the raw artifact)
        train.csv valid.csv classes.txt
        .verified.json           # stamp: (size, mtime_ns, checksum) per file; in .dvcignore

Sources, in order: ``$DLPIPE_MIRROR`` (a directory laid out like ``<mirror>/<name>/<path>``, or an
http(s)/file base URL) under each source's mirror name, then each source's public URL. A file may
have several verified sources (the publisher's, a mirror's repack): whichever arrives is stored as
``path``, and the stamp records which. Each file streams into a ``.tmp-*`` sibling and is renamed
into place only after its size and checksum match and, for a dataset with a content check, after
its member files match the content digest (so a repack that is not what it claims, or a source
whose bytes are not pinned, is proven by content). A killed run leaves only ``.tmp-*`` files, which
the next run deletes. A second run makes no request: files whose stamp matches their current size
and mtime are trusted without re-hashing; others are re-hashed.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from dlpipe import registry
from dlpipe.core.errors import DataError, DownloadError
from dlpipe.core.atomic import atomic_path, write_json
from dlpipe.io.content import check_archive
from dlpipe.io.extract import extract_into
from dlpipe.registry import Dataset, FileSpec, Source

STAMP = ".verified.json"
TIMEOUT = 60.0  # seconds without data before a socket read gives up
CHUNK = 1 << 20
MIRROR_HELP = (
    "To work offline, point dlpipe at a mirror laid out as <mirror>/<dataset>/<file>:\n"
    "  export DLPIPE_MIRROR=/path/to/mirror      # a directory, e.g. ../shared/data\n"
    "  export DLPIPE_MIRROR=https://host/base    # or an http(s):// or file:// base URL"
)


class _AttemptFailed(Exception):
    """One source failed; the next one is tried."""


def fetch_dataset(name: str, dest_root: str | os.PathLike = Path("data/raw"), mirror: str | None = None,
                  out_dir: str | os.PathLike | None = None, timeout: float = TIMEOUT,
                  progress: bool = True) -> dict:
    """Download, verify and extract registry dataset ``name``.

    Args:
        name: a registry name (``dlpipe datasets`` lists them).
        dest_root: files go to ``dest_root/name/`` ...
        mirror: mirror directory or base URL; None reads ``$DLPIPE_MIRROR``, "" means no mirror.
        out_dir: ... unless ``out_dir`` is given (the DVC stage passes its declared output).
        timeout: socket timeout in seconds.
        progress: show a tqdm byte counter.
    Returns:
        ``{"dataset", "files", "downloaded", "reused", "bytes", "extracted", "seconds"}``.
    """
    ds = registry.get(name)
    out = Path(out_dir) if out_dir is not None else Path(dest_root) / name
    mirror = os.environ.get("DLPIPE_MIRROR", "") if mirror is None else mirror
    return fetch(ds, out, mirror, timeout, progress)


def fetch(ds: Dataset, out: Path, mirror: str = "", timeout: float = TIMEOUT, progress: bool = True) -> dict:
    """:func:`fetch_dataset` for a :class:`Dataset` object, into ``out`` (no environment lookup)."""
    t0 = time.perf_counter()
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        clean_tmp(out, ds)
        stamp = _read_stamp(out)
        todo = [f for f in ds.files if not _is_verified(out / f.path, f, stamp)]
        missing = _download_all(ds, todo, out, mirror, timeout, stamp, progress)
        _check_content_in_place(ds, out, stamp, progress)
        extracted = _extract_all(ds, out, stamp, force=bool(todo), progress=progress)
        write_json(out / STAMP, stamp)
    except BaseException:
        if created:  # a failed first run leaves no empty directories behind
            for d, _, _ in sorted(os.walk(out), reverse=True):  # deepest first
                with contextlib.suppress(OSError):
                    os.rmdir(d)
        raise
    present = [f for f in ds.files if (out / f.path).is_file()]
    sources = {f.path: stamp["files"][f.path].get("source", 0) for f in present if f.path in stamp["files"]}
    return {"dataset": ds.name, "files": len(ds.files), "downloaded": len(todo) - len(missing),
            "reused": len(ds.files) - len(todo), "optional_missing": len(missing),
            "bytes": sum((out / f.path).stat().st_size for f in present),
            "sources": {p: i for p, i in sources.items() if i}, "extracted": extracted,
            "seconds": round(time.perf_counter() - t0, 3)}


def candidates(ds: Dataset, f: FileSpec, mirror: str) -> list[tuple[str, int]]:
    """(URL, source index) pairs tried for file ``f``: every source's mirror path first, then public URLs."""
    out = []
    if mirror:
        base = mirror.rstrip("/") if "://" in mirror else Path(mirror).resolve().as_uri().rstrip("/")
        out += [(f"{base}/{urllib.parse.quote(f'{ds.name}/{s.mirror}')}", i)
                for i, s in enumerate(f.sources) if s.mirror]
    out += [(s.url, i) for i, s in enumerate(f.sources) if s.url]
    return out


def candidate_urls(ds: Dataset, f: FileSpec, mirror: str) -> list[str]:
    """The URLs tried for file ``f``, mirror first."""
    return [url for url, _ in candidates(ds, f, mirror)]


def file_digest(path: Path, algo: str) -> str:
    """Hex checksum of a file, read in 1 MiB chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def clean_tmp(out: Path, ds: Dataset) -> list[Path]:
    """Delete ``.tmp-*``/``.old-*`` leftovers of an interrupted run where this module makes them."""
    dirs = {out} | {(out / f.path).parent for f in ds.files}
    removed = []
    for d in sorted(dirs):
        for p in list(d.glob(".tmp-*")) + list(d.glob(".old-*")):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def dataset_status(name: str, dest_root: str | os.PathLike = Path("data/raw"), rehash: bool = False) -> str:
    """'verified', 'missing', 'partial' (files absent, or extracted members deleted) or 'changed'.

    'changed' means a file fails its checksum. Without ``rehash`` a file counts as verified when
    the stamp matches its size and mtime.
    """
    ds = registry.get(name)
    out = Path(dest_root) / name
    present = [f for f in ds.files if (out / f.path).is_file()]
    if not present:
        return "missing"
    stamp = _read_stamp(out)
    if not all(_is_verified(out / f.path, f, {} if rehash else stamp, update=False) for f in present):
        return "changed"
    entries = stamp["extracted"].get("entries", [])  # none recorded (e.g. after `dvc pull`): not judged
    required = [f for f in ds.files if not f.optional]
    if not all((out / f.path).is_file() for f in required) or not all((out / e).exists() for e in entries):
        return "partial"
    return "verified"


# ---- stamp ----------------------------------------------------------------------------------

def _read_stamp(out: Path) -> dict:
    try:
        stamp = json.loads((out / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamp = {}
    if not isinstance(stamp.get("files"), dict):
        stamp = {"files": {}, "extracted": {}}
    stamp.setdefault("extracted", {})
    return stamp


def _stamp_entry(path: Path, f: FileSpec, i: int = 0) -> dict:
    st, src = path.stat(), f.sources[i]
    entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "algo": src.algo, "digest": src.digest}
    return {**entry, "source": i} if i else entry


def _is_verified(path: Path, f: FileSpec, stamp: dict, update: bool = True) -> bool:
    """True when ``path`` holds the bytes of one of ``f``'s sources: by the stamp if size+mtime match,
    else by re-hashing against each pinned source (an unpinned source's file is trusted only by the
    stamp its content check wrote)."""
    if not path.is_file():
        return False
    entry = stamp.get("files", {}).get(f.path)
    if entry is not None and entry.get("source", 0) < len(f.sources) \
            and entry == _stamp_entry(path, f, entry.get("source", 0)):
        return True
    size = path.stat().st_size
    for i, src in enumerate(f.sources):
        if src.pinned and src.bytes in (None, size) and file_digest(path, src.algo) == src.digest:
            if update:
                stamp.setdefault("files", {})[f.path] = _stamp_entry(path, f, i)
            return True
    return False


# ---- transfer -------------------------------------------------------------------------------

def _download_all(ds: Dataset, todo: list[FileSpec], out: Path, mirror: str, timeout: float,
                  stamp: dict, progress: bool) -> list[FileSpec]:
    """Fetch ``todo`` (a content check's listing first, so a mismatch can name the file); returns the
    optional files no source could give."""
    listing = ds.content.listing if ds.content else None
    todo = sorted(todo, key=lambda f: f.path != listing)
    sizes = [f.bytes for f in todo]
    total = None if None in sizes else sum(sizes)
    missing = []
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=ds.name,
              disable=not progress or not todo, mininterval=0.5) as bar:
        for f in todo:
            bar.set_postfix_str(f.path[-40:], refresh=False)
            try:
                i = _fetch_file(ds, f, out, mirror, timeout, bar, stamp, progress)
            except DownloadError as e:
                if not f.optional:
                    raise
                tqdm.write(f"{ds.name}: optional file '{f.path}' not fetched ({str(e).splitlines()[0]})")
                missing.append(f)
                continue
            stamp["files"][f.path] = _stamp_entry(out / f.path, f, i)
            write_json(out / STAMP, stamp)  # a later failure keeps what is already verified
    return missing


def _fetch_file(ds: Dataset, f: FileSpec, out: Path, mirror: str, timeout: float, bar: tqdm, stamp: dict,
                progress: bool) -> int:
    """Fetch ``f`` from the first source that verifies; returns that source's index."""
    tried = []
    for url, i in candidates(ds, f, mirror):
        try:
            _transfer(url, out / f.path, f.sources[i], timeout, bar,
                      lambda tmp, src=f.sources[i]: _content_ok(ds, f, src, tmp, out, stamp, progress))
            return i
        except _AttemptFailed as e:
            tried.append(f"  - {url}\n      {e}")
    raise DownloadError(
        f"could not download dataset '{ds.name}', file '{f.path}' ({f.algo} {f.digest}); tried:\n"
        + "\n".join(tried) + "\n" + MIRROR_HELP
    )


def _content_ok(ds: Dataset, f: FileSpec, src: Source, tmp: Path, out: Path, stamp: dict, progress: bool) -> None:
    """The dataset's content check on a freshly received archive (a mismatch fails this attempt)."""
    c = ds.content
    if c is None or c.archive != f.path:
        return
    listing = out / c.listing if c.listing and (out / c.listing).is_file() else None
    try:
        n = check_archive(tmp, c.include, c.sha256, src.strip, listing, progress)
    except DataError as e:
        raise _AttemptFailed(str(e).replace(str(tmp), "the received archive")) from None
    stamp.setdefault("content", {})[f.path] = {"sha256": c.sha256, "files": n, **_key(tmp)}


def _key(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _check_content_in_place(ds: Dataset, out: Path, stamp: dict, progress: bool) -> None:
    """Run the content check on an archive verified by its bytes alone (e.g. after `dvc pull`)."""
    c = ds.content
    path = out / c.archive if c else None
    if c is None or not path.is_file():
        return
    done = stamp.get("content", {}).get(c.archive, {})
    if done.get("sha256") == c.sha256 and all(done.get(k) == v for k, v in _key(path).items()):
        return
    spec = next(f for f in ds.files if f.path == c.archive)
    strip = spec.sources[stamp["files"].get(c.archive, {}).get("source", 0)].strip
    listing = out / c.listing if c.listing and (out / c.listing).is_file() else None
    n = check_archive(path, c.include, c.sha256, strip, listing, progress)
    stamp.setdefault("content", {})[c.archive] = {"sha256": c.sha256, "files": n, **_key(path)}


def _transfer(url: str, dest: Path, f: Source, timeout: float, bar: tqdm, check=None) -> None:
    """Stream ``url`` into a temp sibling of ``dest``; rename only if size, checksum and ``check(tmp)`` pass."""
    h, n = hashlib.new(f.algo or "sha256"), 0
    try:
        with atomic_path(dest) as tmp:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
                    announced = resp.headers.get("Content-Length")
                    read = getattr(resp, "read1", resp.read)  # what has arrived, for a live progress bar
                    while chunk := read(CHUNK):
                        fh.write(chunk)
                        h.update(chunk)
                        n += len(chunk)
                        bar.update(len(chunk))
            except urllib.error.HTTPError as e:
                raise _AttemptFailed(f"HTTP {e.code} {e.reason}") from None
            except urllib.error.URLError as e:
                raise _AttemptFailed(_reason(e.reason)) from None
            except (OSError, ValueError, http.client.HTTPException) as e:  # timeouts, resets, short reads
                raise _AttemptFailed(f"transfer failed after {n} bytes: {_reason(e)}") from None
            _check_received(f, n, announced, h.hexdigest())
            if check is not None:
                check(tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; data files are world-readable like a plain download
    except _AttemptFailed:
        bar.update(-n)  # the bar counts only bytes that were kept
        raise


def _check_received(f: Source, n: int, announced: str | None, digest: str) -> None:
    if announced is not None and announced.isdigit() and n != int(announced):
        raise _AttemptFailed(f"connection closed after {n} of {announced} bytes")
    if f.bytes is not None and n != f.bytes:
        raise _AttemptFailed(f"size mismatch: expected {f.bytes} bytes, got {n}")
    if f.pinned and digest != f.digest:
        raise _AttemptFailed(f"checksum mismatch: expected {f.algo} {f.digest}, got {digest}")


def _reason(e: object) -> str:
    if isinstance(e, TimeoutError) or "timed out" in str(e):
        return f"timed out ({e})"
    if isinstance(e, FileNotFoundError):
        return f"not found ({e.filename or e})"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is the server up? is the port right?)"
    return str(e) or type(e).__name__


# ---- extraction -----------------------------------------------------------------------------

def _extract_all(ds: Dataset, out: Path, stamp: dict, force: bool, progress: bool) -> int:
    """Extract every archive of ``ds`` into ``out`` (atomically, see :func:`extract_into`); returns archives extracted."""
    archives = [f for f in ds.files if f.extract]
    if not archives:
        return 0
    done = stamp.get("extracted", {})
    want = {f.path: f.digest for f in archives}
    if not force and done.get("archives") == want and all((out / e).exists() for e in done.get("entries", [])):
        return 0
    entries = extract_into(out, [(out / f.path, f.extract, f.strip) for f in archives], done.get("entries", []),
                           reserved={STAMP} | {Path(f.path).parts[0] for f in ds.files}, progress=progress)
    stamp["extracted"] = {"archives": want, "entries": entries}
    return len(archives)
