"""Safe extraction: archives built here, hostile members refused by name, good ones extracted exactly."""
from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from functools import partial
from pathlib import Path

import pytest

from dlpipe.core.errors import DataError
from dlpipe.io.extract import extract_archive

fault = partial(pytest.mark.fault, "Bad data")


def make_tar(path: Path, members: list[tuple]) -> Path:
    """members: (name, kind, payload) with kind in file/dir/sym/lnk/chr/fifo."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "lnk": tarfile.LNKTYPE,
                         "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("sym", "lnk"):
                info.linkname = payload
            tar.addfile(info)
    return path


def make_zip(path: Path, members: list[tuple]) -> Path:
    """members: (name, kind, payload) with kind in file/sym."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, kind, payload in members:
            info = zipfile.ZipInfo(name)
            if kind == "sym":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, payload)
            else:
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                zf.writestr(info, payload)
    return path


OK = ("ok.txt", "file", b"fine")
BAD_CASES = [  # (id, members, offending member, reason fragment)
    ("dotdot", [OK, ("../evil", "file", b"x")], "../evil", "'..'"),
    ("nested-dotdot", [OK, ("a/../../evil", "file", b"x")], "a/../../evil", "'..'"),
    ("absolute", [OK, ("/abs", "file", b"x")], "/abs", "absolute path"),
    ("symlink-escapes", [OK, ("link", "sym", "../../outside")], "link", "escapes"),
    ("symlink-absolute", [OK, ("link", "sym", "/etc/passwd")], "link", "absolute"),
    ("symlink-chain-escapes", [("b", "sym", "."), ("a", "sym", "b/../x")], "a", "resolves outside"),
    ("write-through-link-chain", [("d", "sym", "b/.."), ("b", "sym", "."), ("d/f", "file", b"x")], "d/f", "outside"),
]
TAR_ONLY = [
    ("hardlink-escapes", [OK, ("h", "lnk", "../../etc/passwd")], "h", "hard link"),
    ("hardlink-absolute", [OK, ("h", "lnk", "/etc/passwd")], "h", "hard link"),
    ("char-device", [OK, ("dev", "chr", "")], "dev", "device"),
    ("fifo", [OK, ("pipe", "fifo", "")], "pipe", "device or FIFO"),
]


@fault("tar member escaping the target (.., /abs, links, devices): DataError naming archive and member")
@pytest.mark.parametrize("members,member,reason", [c[1:] for c in BAD_CASES + TAR_ONLY],
                         ids=[c[0] for c in BAD_CASES + TAR_ONLY])
def test_tar_rejects_unsafe_member(tmp_path, members, member, reason):
    archive = make_tar(tmp_path / "evil.tar.gz", members)
    dest = tmp_path / "box" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(DataError) as e:
        extract_archive(archive, "tar", dest)
    assert str(archive) in str(e.value) and f"'{member}'" in str(e.value) and reason in str(e.value)
    assert not (tmp_path / "box" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not (tmp_path / "box" / "x").exists() and not (tmp_path / "box" / "f").exists()


@fault("zip member escaping the target (.., /abs, symlinks): DataError naming archive and member")
@pytest.mark.parametrize("members,member,reason", [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_zip_rejects_unsafe_member(tmp_path, members, member, reason):
    archive = make_zip(tmp_path / "evil.zip", members)
    dest = tmp_path / "box" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(DataError) as e:
        extract_archive(archive, "zip", dest)
    assert str(archive) in str(e.value) and f"'{member}'" in str(e.value) and reason in str(e.value)
    assert not (tmp_path / "box" / "evil").exists() and not (tmp_path / "box" / "f").exists()


def test_tar_checks_every_member_before_writing_any(tmp_path):
    archive = make_tar(tmp_path / "a.tgz", [OK, ("sub/y.txt", "file", b"y"), ("../evil", "file", b"x")])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError):
        extract_archive(archive, "tar", dest)
    assert list(dest.iterdir()) == []


def test_tar_extracts_files_links_and_strips_top_dir(tmp_path):
    members = [
        ("pkg", "dir", None),
        ("pkg/data", "dir", None),
        ("pkg/data/a.txt", "file", b"alpha"),
        ("pkg/data/latest.txt", "sym", "a.txt"),
        ("pkg/copy.txt", "lnk", "pkg/data/a.txt"),
        ("pkg/./dot.txt", "file", b"dot"),
    ]
    archive = make_tar(tmp_path / "good.tar.gz", members)
    dest = tmp_path / "dest"
    dest.mkdir()
    assert extract_archive(archive, "tar", dest, strip=1) == ["copy.txt", "data", "dot.txt"]
    assert (dest / "data" / "a.txt").read_bytes() == b"alpha"
    assert os.readlink(dest / "data" / "latest.txt") == "a.txt"
    assert (dest / "data" / "latest.txt").read_bytes() == b"alpha"
    assert (dest / "copy.txt").read_bytes() == b"alpha" and not (dest / "copy.txt").is_symlink()
    assert (dest / "dot.txt").read_bytes() == b"dot"


def test_zip_extracts_with_strip_and_inner_symlink(tmp_path):
    archive = make_zip(tmp_path / "good.zip", [("top/", "file", b""), ("top/x/a.txt", "file", b"a"),
                                               ("top/x/ln", "sym", "a.txt")])
    dest = tmp_path / "dest"
    dest.mkdir()
    assert extract_archive(archive, "zip", dest, strip=1) == ["x"]
    assert (dest / "x" / "a.txt").read_bytes() == b"a" and (dest / "x" / "ln").read_bytes() == b"a"


def test_symlink_to_inside_dir_may_be_written_through(tmp_path):
    archive = make_tar(tmp_path / "t.tar", [("real", "dir", None), ("alias", "sym", "real"), ("alias/f", "file", b"f")])
    dest = tmp_path / "dest"
    dest.mkdir()
    extract_archive(archive, "tar", dest)
    assert (dest / "real" / "f").read_bytes() == b"f"


@fault("corrupt or wrong-format archive: DataError naming the archive")
@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_corrupt_archive(tmp_path, kind):
    archive = tmp_path / f"junk.{kind}"
    archive.write_bytes(b"this is not an archive" * 10)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match=f"{archive}: not a readable {kind} archive"):
        extract_archive(archive, kind, dest)


@pytest.mark.slow  # 14,434 small files: seconds of pure file creation
def test_real_mnist_sample_tarball(mirror, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    tops = extract_archive(mirror / "mnist_sample" / "mnist_sample.tgz", "tar", dest, strip=1)
    assert tops == ["labels.csv", "train", "valid"]
    assert len(list((dest / "valid" / "3").glob("*.png"))) == 1010
    assert sum(1 for _ in (dest / "labels.csv").open()) == 14434 + 1  # header row
