"""Safe extraction of tar (plain/gz/bz2/xz) and zip archives.

Every member is checked before anything is written: absolute paths, ``..`` components, links
(symbolic or hard) whose target leaves the destination, and device/FIFO files are refused with a
:class:`~dlpipe.core.errors.DataError` naming the archive and the member. Members are written one by
one (never ``extractall``), and each file's parent is re-checked with ``realpath`` so that a link
extracted earlier cannot redirect a later write outside the destination.
"""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from dlpipe.core.errors import DataError


def extract_archive(archive: str | os.PathLike, kind: str, dest: str | os.PathLike, strip: int = 0,
                    progress: bool = False) -> list[str]:
    """Extract ``archive`` (``kind`` 'tar' or 'zip') into the existing directory ``dest``.

    Args:
        archive: the archive file (already checksum-verified by the caller).
        kind: ``"tar"`` (any compression tarfile reads) or ``"zip"``.
        dest: target directory; members are merged into it.
        strip: leading path components dropped from each member (``tar --strip-components``);
            members with no components left (e.g. the top directory itself) are skipped.
        progress: show a tqdm counter of members written.
    Returns:
        The sorted top-level names created under ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    if kind == "tar":
        names = _extract_tar(archive, dest, strip, progress)
    elif kind == "zip":
        names = _extract_zip(archive, dest, strip, progress)
    else:
        raise ValueError(f"{archive}: unknown archive kind {kind!r} (expected 'tar' or 'zip')")
    return sorted(names)


def _bar(plan: list, archive: Path, progress: bool):
    return tqdm(plan, desc=f"extract {archive.name}", unit="file", disable=not progress, mininterval=0.5)


def member_parts(archive: Path, name: str, strip: int) -> tuple[str, ...] | None:
    """The safe relative path parts of member ``name`` after stripping; None if nothing is left."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{archive}: unsafe member '{name}': absolute path")
    parts = tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", "."))
    if ".." in parts:
        raise DataError(f"{archive}: unsafe member '{name}': '..' path component")
    parts = parts[strip:]
    return parts or None


def _check_link(archive: Path, name: str, parts: tuple[str, ...], target: str) -> None:
    """Refuse a symlink at ``parts`` whose ``target`` resolves outside the destination."""
    if not target or target.startswith(("/", "\\")):
        raise DataError(f"{archive}: unsafe member '{name}': symlink to absolute path '{target}'")
    depth = len(parts) - 1  # directories above the link, inside the destination
    for p in PurePosixPath(target).parts:
        depth += -1 if p == ".." else (0 if p == "." else 1)
        if depth < 0:
            raise DataError(f"{archive}: unsafe member '{name}': symlink '{target}' escapes the target directory")


def _verify_links(archive: Path, dest: Path, links: list[tuple[str, tuple[str, ...]]]) -> None:
    """Once every member exists, check that each symlink really resolves inside ``dest``.

    The lexical check in :func:`_check_link` cannot see a chain such as ``a -> b/../x`` with
    ``b -> .``, which escapes only after ``b`` exists.
    """
    root = os.path.realpath(dest)
    for name, parts in links:
        real = os.path.realpath(dest.joinpath(*parts))
        if real != root and not real.startswith(root + os.sep):
            raise DataError(f"{archive}: unsafe member '{name}': symlink resolves outside the target directory")


class _Dest:
    """Member paths under ``dest``, each parent checked with ``realpath`` before anything is created.

    Checked parents are cached (this is the hot path for archives of 100k small files) until a
    symlink is created, since a new link can change where an existing path leads.
    """

    def __init__(self, dest: Path, archive: Path):
        self.dest, self.archive = dest, archive
        self.root = os.path.realpath(dest)
        self.safe: set[Path] = set()

    def _check_parent(self, path: Path, name: str) -> None:
        parent = path.parent
        if parent in self.safe:
            return
        real = os.path.realpath(parent)  # resolves the existing prefix; the rest has no '..'
        if real != self.root and not real.startswith(self.root + os.sep):
            raise DataError(f"{self.archive}: unsafe member '{name}': writes through a link outside the target directory")
        parent.mkdir(parents=True, exist_ok=True)
        self.safe.add(parent)

    def dir(self, parts: tuple[str, ...], name: str) -> None:
        path = self.dest.joinpath(*parts)
        self._check_parent(path, name)
        path.mkdir(exist_ok=True)

    def file(self, parts: tuple[str, ...], name: str) -> Path:
        """A path ready to be written: parent checked and created, any old non-directory removed."""
        path = self.dest.joinpath(*parts)
        self._check_parent(path, name)
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                path.unlink()
        except FileNotFoundError:
            pass
        return path

    def symlink(self, parts: tuple[str, ...], name: str, target: str) -> None:
        os.symlink(target, self.file(parts, name))
        self.safe.clear()


def _extract_tar(archive: Path, dest: Path, strip: int, progress: bool) -> set[str]:
    try:
        tar = tarfile.open(archive)
    except (tarfile.TarError, OSError) as e:
        raise DataError(f"{archive}: not a readable tar archive ({e})") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:   # gzip raises EOFError when cut short
            raise DataError(f"{archive}: truncated or corrupt tar archive ({e})") from None
        plan = [(m, member_parts(archive, m.name, strip)) for m in members]
        for m, parts in plan:  # check everything before writing anything
            _check_tar_member(archive, m, parts, strip)
        tops, out = set(), _Dest(dest, archive)
        for m, parts in _bar(plan, archive, progress):
            if parts is None:
                continue
            tops.add(parts[0])
            _write_tar_member(tar, m, parts, out, strip)
    _verify_links(archive, dest, [(m.name, parts) for m, parts in plan if parts and m.issym()])
    return tops


def _check_tar_member(archive: Path, m: tarfile.TarInfo, parts, strip: int) -> None:
    if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
        raise DataError(f"{archive}: unsafe member '{m.name}': device or FIFO file")
    if parts is None:
        return
    if m.issym():
        _check_link(archive, m.name, parts, m.linkname)
    elif m.islnk():
        try:
            inside = member_parts(archive, m.linkname, strip) is not None
        except DataError:  # absolute or '..' link target
            inside = False
        if not inside:
            raise DataError(f"{archive}: unsafe member '{m.name}': hard link to '{m.linkname}' outside the target directory")
    elif not (m.isfile() or m.isdir() or m.islnk()):
        raise DataError(f"{archive}: unsupported member '{m.name}' (type {m.type!r})")


def _write_tar_member(tar: tarfile.TarFile, m: tarfile.TarInfo, parts, out: _Dest, strip: int) -> None:
    if m.isdir():
        out.dir(parts, m.name)
        return
    if m.issym():
        out.symlink(parts, m.name, m.linkname)
        return
    target = out.file(parts, m.name)
    if m.islnk():  # copy the earlier member instead of linking, so no inode is shared with the cache
        source = out.dest.joinpath(*member_parts(out.archive, m.linkname, strip))
        if not source.is_file():
            raise DataError(f"{out.archive}: member '{m.name}': hard link target '{m.linkname}' was not extracted first")
        shutil.copyfile(source, target)
    else:
        with tar.extractfile(m) as src, open(target, "wb") as fh:
            shutil.copyfileobj(src, fh, 1 << 20)
    os.chmod(target, 0o755 if m.mode & 0o111 else 0o644)
    os.utime(target, (m.mtime, m.mtime))


def _extract_zip(archive: Path, dest: Path, strip: int, progress: bool) -> set[str]:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{archive}: not a readable zip archive ({e})") from None
    with zf:
        plan = []
        for info in zf.infolist():
            parts = member_parts(archive, info.filename, strip)
            mode = info.external_attr >> 16
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                raise DataError(f"{archive}: unsafe member '{info.filename}': device or FIFO file")
            if parts is not None and stat.S_ISLNK(mode):
                _check_link(archive, info.filename, parts, zf.read(info).decode("utf-8", "replace"))
            plan.append((info, parts, mode))
        tops, out = set(), _Dest(dest, archive)
        for info, parts, mode in _bar(plan, archive, progress):
            if parts is None:
                continue
            tops.add(parts[0])
            _write_zip_member(zf, info, parts, mode, out)
    _verify_links(archive, dest, [(i.filename, parts) for i, parts, mode in plan if parts and stat.S_ISLNK(mode)])
    return tops


def _write_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, parts, mode: int, out: _Dest) -> None:
    if info.is_dir():
        out.dir(parts, info.filename)
        return
    if stat.S_ISLNK(mode):
        out.symlink(parts, info.filename, zf.read(info).decode("utf-8"))
        return
    target = out.file(parts, info.filename)
    try:
        with zf.open(info) as src, open(target, "wb") as fh:
            shutil.copyfileobj(src, fh, 1 << 20)
    except (zipfile.BadZipFile, EOFError) as e:  # CRC errors surface here
        raise DataError(f"{out.archive}: member '{info.filename}' is corrupt ({e})") from None
    if mode & 0o111:
        os.chmod(target, 0o755)


def extract_into(out: Path, archives: list[tuple[Path, str, int]], previous: list[str], reserved: set[str],
                 progress: bool = False) -> list[str]:
    """Extract ``(archive, kind, strip)`` items into ``out`` via one staging directory, then swap each
    top-level entry into place (a killed run leaves only ``.tmp-*``/``.old-*`` siblings). Entries of
    ``previous`` that the archives no longer hold are removed; a member named like one of
    ``reserved`` (the downloads, the stamp) is refused. Returns the sorted top-level entries."""
    staging = Path(tempfile.mkdtemp(prefix=".tmp-extract.", dir=out))
    try:
        for archive, kind, strip in archives:
            extract_archive(archive, kind, staging, strip, progress=progress)
        entries = sorted(p.name for p in staging.iterdir())
        clash = sorted(reserved & set(entries))
        if clash:
            raise DataError(f"{archives[0][0]}: member '{clash[0]}' would overwrite a downloaded file or the stamp")
        for old in set(previous) - set(entries):  # left over from an older archive
            _remove(out / old)
        for name in entries:
            _replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entries


def _replace(src: Path, dest: Path) -> None:
    """Move ``src`` onto ``dest``; an existing ``dest`` is renamed aside first, then deleted."""
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".old-{dest.name}.{os.getpid()}")
        os.replace(dest, old)
        os.replace(src, dest)
        _remove(old)
    else:
        os.replace(src, dest)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)
