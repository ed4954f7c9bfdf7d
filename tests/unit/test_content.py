"""Datasets with several verified sources and a content check (repacks): real transfers from a
loopback HTTP server and a mirror directory, on small archives the tests build (no mocks)."""
from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from functools import partial
from pathlib import Path

import pytest

from dlpipe.core.errors import DataError, DownloadError
from dlpipe.io.content import archive_listing, check_archive, first_difference, listing_digest, listing_text, matches
from dlpipe.io.download import STAMP, fetch
from dlpipe.registry import ContentCheck, Dataset, FileSpec, Source

from test_download import closed_port_url, server  # noqa: F401  (the loopback server fixture)

fault = partial(pytest.mark.fault, "Bad data")

REVIEWS = {"aclImdb/train/pos/0_9.txt": b"A fine film.", "aclImdb/train/neg/1_2.txt": b"Dull.",
           "aclImdb/test/pos/2_8.txt": b"Loved it.", "aclImdb/train/unsup/3_0.txt": b"Saw it twice."}
EXTRA = {"aclImdb/README": b"Large Movie Review Dataset v1.0", "aclImdb/train/labeledBow.feat": b"0:1 2:3"}
INCLUDE = ("aclImdb/train/*/*.txt", "aclImdb/test/*/*.txt")


def tar_gz(members: dict[str, bytes], prefix: str = "", level: int = 9) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=level) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def listing(members: dict[str, bytes]) -> list[tuple[str, str]]:
    return sorted(((p, sha(d)) for p, d in members.items()), key=lambda r: r[0].encode())


DIGEST = listing_digest(listing(REVIEWS))
OFFICIAL = tar_gz({**EXTRA, **REVIEWS})            # the publisher's tarball: .feat files and all
REPACK = tar_gz(REVIEWS, level=1)                   # the mirror's repack: other bytes, same reviews


def dataset(url_base: str, official: bytes = OFFICIAL, repack: bytes = REPACK, with_listing: bool = True) -> Dataset:
    """An aclImdb-like dataset: official URL + a mirror-only repack, a content check, an optional listing."""
    arch = FileSpec("aclImdb.tar.gz", f"{url_base}/official/aclImdb.tar.gz", "sha256", sha(official), len(official),
                    alt=(Source("", "repack.tar.gz", "sha256", sha(repack), len(repack), how="repack"),))
    text = gzip.compress(listing_text(listing(REVIEWS)))
    files = [arch] + ([FileSpec("reviews.sha256.gz", "", "sha256", sha(text), len(text), mirror="reviews.sha256.gz",
                                optional=True)] if with_listing else [])
    check = ContentCheck("aclImdb.tar.gz", INCLUDE, DIGEST, "reviews.sha256.gz" if with_listing else None)
    return Dataset("demo", "demo", "sample", "MIT", "test (2024)", tuple(files), content=check)


def write_mirror(root: Path, repack: bytes = REPACK) -> Path:
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "repack.tar.gz").write_bytes(repack)
    (root / "demo" / "reviews.sha256.gz").write_bytes(gzip.compress(listing_text(listing(REVIEWS))))
    return root


# ---- pure pieces -------------------------------------------------------------------------------

@pytest.mark.parametrize("path,patterns,want", [
    ("aclImdb/train/pos/0_9.txt", INCLUDE, True),
    ("aclImdb/train/unsup/3_0.txt", INCLUDE, True),
    ("aclImdb/train/labeledBow.feat", INCLUDE, False),
    ("aclImdb/README", INCLUDE, False),
    ("aclImdb/train/pos/deep/0_9.txt", INCLUDE, False),     # '*' never crosses a '/'
    ("train/cat/0001.jpg", ("train/*/*.jpg",), True),
    ("x/train/cat/0001.jpg", ("train/*/*.jpg",), False),    # anchored at the start
])
def test_matches_is_per_component(path, patterns, want):
    assert matches(path, patterns) is want


def test_digest_is_sha256sum_of_the_sorted_listing(tmp_path):
    rows = listing({"b/2.txt": b"x", "B/1.txt": b"y", "a/3.txt": b"z"})
    assert [p for p, _ in rows] == ["B/1.txt", "a/3.txt", "b/2.txt"]      # byte order: upper case first
    text = listing_text(rows)
    assert text.splitlines()[0] == f"{sha(b'y')}  B/1.txt".encode()
    assert listing_digest(rows) == sha(text)


def test_both_sources_give_the_same_digest(tmp_path):
    (tmp_path / "o.tgz").write_bytes(OFFICIAL)
    (tmp_path / "r.tgz").write_bytes(REPACK)
    (tmp_path / "p.tgz").write_bytes(tar_gz(REVIEWS, prefix="aclImdb-main/"))
    assert sha(OFFICIAL) != sha(REPACK)
    for name, strip in (("o.tgz", 0), ("r.tgz", 0), ("p.tgz", 1)):
        assert listing_digest(archive_listing(tmp_path / name, INCLUDE, strip, progress=False)) == DIGEST
        assert check_archive(tmp_path / name, INCLUDE, DIGEST, strip, progress=False) == len(REVIEWS)


@pytest.mark.parametrize("change,said", [
    ({"aclImdb/train/neg/1_2.txt": b"Dull!"}, "aclImdb/train/neg/1_2.txt differs (sha256 "),
    ({"aclImdb/test/neg/9_1.txt": b"new"}, "aclImdb/test/neg/9_1.txt is not expected"),
    ({"aclImdb/train/pos/0_9.txt": None}, "aclImdb/train/pos/0_9.txt is missing"),
])
def test_first_difference_names_the_file(change, said):
    have = {k: v for k, v in {**REVIEWS, **change}.items() if v is not None}
    assert first_difference(listing(have), listing(REVIEWS)).startswith(said)


# ---- fetch: two sources, content check ---------------------------------------------------------

def test_mirror_repack_is_verified_by_its_checksum_and_the_content(tmp_path):
    ds = dataset(closed_port_url())              # the official URL is dead: the repack must do
    out = tmp_path / "raw"
    m = fetch(ds, out, mirror=str(write_mirror(tmp_path / "mirror")), progress=False)
    assert (out / "aclImdb.tar.gz").read_bytes() == REPACK
    assert m["sources"] == {"aclImdb.tar.gz": 1} and m["optional_missing"] == 0
    assert fetch(ds, out, mirror="", progress=False)["downloaded"] == 0      # stamp: no request, no re-check


def test_official_source_is_verified_by_its_checksum_and_the_content(server, tmp_path):
    base, root, httpd = server
    (root / "official").mkdir()
    (root / "official" / "aclImdb.tar.gz").write_bytes(OFFICIAL)
    out = tmp_path / "raw"
    m = fetch(dataset(base), out, mirror="", progress=False)   # no mirror: the listing is optional
    assert (out / "aclImdb.tar.gz").read_bytes() == OFFICIAL
    assert m["sources"] == {} and m["optional_missing"] == 1
    assert httpd.hits == ["/official/aclImdb.tar.gz"]


@fault("repack whose own checksum matches but whose reviews differ: content check names the first differing file; the official source is tried next")
def test_corrupted_repack_is_caught_by_the_content_check(server, tmp_path):
    base, root, httpd = server
    bad = tar_gz({**REVIEWS, "aclImdb/train/neg/1_2.txt": b"Dull, but edited."}, level=1)
    ds = dataset(closed_port_url(), repack=bad)   # the registry pins the corrupt repack's own bytes
    out = tmp_path / "raw"
    with pytest.raises(DownloadError) as e:
        fetch(ds, out, mirror=str(write_mirror(tmp_path / "mirror", bad)), progress=False)
    msg = str(e.value)
    assert "content check failed over 4 files: aclImdb/train/neg/1_2.txt differs (sha256 " in msg
    assert not (out / "aclImdb.tar.gz").exists() and not list(out.glob(".tmp-*"))
    (root / "official").mkdir()
    (root / "official" / "aclImdb.tar.gz").write_bytes(OFFICIAL)
    m = fetch(dataset(base, repack=bad), out, mirror=str(tmp_path / "mirror"), progress=False)
    assert m["sources"] == {} and (out / "aclImdb.tar.gz").read_bytes() == OFFICIAL


@fault("unpinned source (a code host's generated archive) with a tampered review: content check refuses it")
def test_tampered_review_in_an_unpinned_source(server, tmp_path):
    base, root, httpd = server
    (root / "gh").mkdir()
    good = tar_gz(REVIEWS, prefix="aclImdb-main/")
    (root / "gh" / "good.tar.gz").write_bytes(good)
    (root / "gh" / "bad.tar.gz").write_bytes(tar_gz({**REVIEWS, "aclImdb/test/pos/2_8.txt": b"Hated it."},
                                                    prefix="aclImdb-main/"))

    def unpinned(name: str, with_listing: bool = True) -> Dataset:
        ds = dataset(closed_port_url(), with_listing=with_listing)
        arch = FileSpec("aclImdb.tar.gz", f"{base}/gh/{name}", None, None, None, strip=1, mirror=None)
        return Dataset("demo", "demo", "sample", "MIT", "t (2024)", (arch, *ds.files[1:]), content=ds.content)

    mirror = write_mirror(tmp_path / "mirror")
    with pytest.raises(DownloadError) as e:
        fetch(unpinned("bad.tar.gz"), tmp_path / "a", mirror=str(mirror), progress=False)
    assert "aclImdb/test/pos/2_8.txt differs" in str(e.value)
    with pytest.raises(DownloadError) as e:             # without the listing: the digests, and how to name the file
        fetch(unpinned("bad.tar.gz", with_listing=False), tmp_path / "b", mirror="", progress=False)
    assert f"expected {DIGEST}" in str(e.value) and "listing" in str(e.value)
    m = fetch(unpinned("good.tar.gz"), tmp_path / "c", mirror=str(mirror), progress=False)
    assert (tmp_path / "c" / "aclImdb.tar.gz").read_bytes() == good and m["downloaded"] == 2


@fault("archive edited in place after download: the next fetch re-verifies by bytes and content and fetches it again")
def test_in_place_recheck_after_the_stamp_is_gone(tmp_path):
    ds = dataset(closed_port_url())
    out = tmp_path / "raw"
    mirror = write_mirror(tmp_path / "mirror")
    fetch(ds, out, mirror=str(mirror), progress=False)
    (out / STAMP).unlink()                      # e.g. after `dvc pull`: bytes and content are checked again
    assert fetch(ds, out, mirror=str(mirror), progress=False)["downloaded"] == 0
    (out / "aclImdb.tar.gz").write_bytes(tar_gz({**REVIEWS, "aclImdb/train/pos/0_9.txt": b"meh"}, level=1))
    m = fetch(ds, out, mirror=str(mirror), progress=False)
    assert m["downloaded"] == 1 and (out / "aclImdb.tar.gz").read_bytes() == REPACK


def test_corrupt_listing_line_is_named(tmp_path):
    p = tmp_path / "l.sha256"
    p.write_text(f"{sha(b'a')}  a.txt\nnot a listing line\n")
    with pytest.raises(DataError, match=r"l.sha256: line 2: expected '<sha256 hex>  <path>'"):
        check_archive(tmp_path / "missing.tgz", INCLUDE, DIGEST, expected=p, progress=False)


@pytest.mark.slow
def test_real_imdb_repack_from_the_mirror(mirror, tmp_path):
    """The 57 MB repack: its sha256, then the MANIFEST's reviews digest over all 100,000 reviews."""
    from dlpipe.io.download import dataset_status, fetch_dataset
    m = fetch_dataset("imdb", dest_root=tmp_path, mirror=str(mirror), progress=False)
    assert m["sources"] == {"aclImdb_v1.tar.gz": 1} and m["optional_missing"] == 0
    stamp = (tmp_path / "imdb" / STAMP).read_text()
    assert '"files": 100000' in stamp and "b00cc6bf6ff859b1ff34cb4995d0dfa5a4eb7f74aceb2238f6d502669203838b" in stamp
    assert dataset_status("imdb", tmp_path, rehash=True) == "verified"
