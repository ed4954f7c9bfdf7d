"""The registry matches the mirror's manifest, carries publishers' checksums, and rejects bad entries."""
from __future__ import annotations

import json
import re
from functools import partial

import pytest
import yaml

from dlpipe import registry
from dlpipe.core.errors import DataError

fault = partial(pytest.mark.fault, "Params")


def test_every_manifest_dataset_is_registered_with_identical_facts(mirror):
    """Each mirror file is exactly one registered source (a repack may be an extra source of a file
    whose primary source is the publisher's), with the manifest's URL, sha256 and size."""
    manifest = json.loads((mirror / "manifest.json").read_text())
    for entry in manifest["datasets"]:
        ds = registry.get(entry["name"])
        assert ds.scale == "sample" and ds.title == entry["title"]
        in_mirror = {f"{ds.name}/{s.mirror}": s for f in ds.files for s in f.sources if s.mirror}
        listed = {f["path"] for f in entry["files"]}
        assert listed <= set(in_mirror), f"{ds.name}: mirror files with no registered source"
        assert {k for k, s in in_mirror.items() if not s.url} <= listed, f"{ds.name}: mirror-only sources not in the mirror"
        for f in entry["files"]:
            s = in_mirror[f["path"]]
            assert (s.digest, s.bytes) == (f["sha256"], f["bytes"])
            assert s.url == f.get("url", s.url) and (s.url or "url" not in f)


@pytest.mark.parametrize("name,digest", [
    ("imdb", "b00cc6bf6ff859b1ff34cb4995d0dfa5a4eb7f74aceb2238f6d502669203838b"),   # MANIFEST: reviews_digest
])
def test_content_digests_are_the_manifests(mirror, name, digest):
    manifest = {d["name"]: d for d in json.loads((mirror / "manifest.json").read_text())["datasets"]}
    assert registry.get(name).content.sha256 == digest == manifest[name]["mirror_repack"]["reviews_digest"]


def test_repacked_imdb_keeps_the_official_tarball_as_a_verified_source():
    spec = registry.get("imdb").files[0]
    official, repack = spec.sources
    assert (official.url, official.algo, official.digest, official.bytes) == (
        "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz", "sha256",
        "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe", 84125825)
    assert (repack.url, repack.mirror, repack.bytes) == ("", "aclImdb_v1_texts.tar.gz", 56748781)


@pytest.mark.parametrize("name,path,algo,digest,size", [
    ("imdb_fastai", "imdb.tgz", "md5", "90f9b1c4ff43a90d67553c9240dc0249", 144440600),
    ("wikitext-103", "wikitext-103-v1.zip", "sha1", "0aec09a7537b58d4bb65362fee27650eeaba625a", None),
    ("wikitext-2_full", "wikitext-2-v1.zip", "sha1", "3c914d17d80b1459be871a5039ac23e752a53cbe", None),
    ("mnist_full", "train-images-idx3-ubyte.gz", "md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
    ("mnist_full", "t10k-labels-idx1-ubyte.gz", "md5", "ec29112dd5afa0611ce80d1b7f02629c", 4542),
    ("cifar10", "cifar-10-python.tar.gz", "md5", "c58f30108f718f92721af3b95e74349a", 170498071),
    ("voc2007", "VOCtrainval_06-Nov-2007.tar", "md5", "c52e279531787c972589f7e41ab4ae64", None),
    ("voc2007", "VOCtest_06-Nov-2007.tar", "md5", "b6e924de25625d8de591ea690078ad9f", None),
    ("giga_fren", "giga-fren.tgz", "md5", "69573f58e2c850b90f2f954077041d8c", 2598183296),
])
def test_full_scale_entries_carry_publisher_checksums(name, path, algo, digest, size):
    ds = registry.get(name)
    spec = {f.path: f for f in ds.files}[path]
    assert ds.scale == "full" and (spec.algo, spec.digest, spec.bytes) == (algo, digest, size)


@pytest.mark.parametrize("name,extract,strip", [
    ("imdb_sample", "tar", 1), ("mnist_sample", None, 0), ("mnist", None, 0), ("multi30k_en_fr", None, 0),
    ("wikitext-2", None, 0), ("imdb_fastai", "tar", 1), ("wikitext-103", "zip", 1), ("imdb", None, 0),
    ("cifar10_jpg", None, 0), ("gutenberg_books", None, 0), ("giga_fren", None, 0),
])
def test_extraction_rules(name, extract, strip):
    assert {(f.extract, f.strip) for f in registry.get(name).files} == {(extract, strip)}


def test_every_entry_has_license_and_a_dated_citation():
    for ds in registry.all():
        assert 0 < len(ds.license) <= 60, ds.name
        assert re.search(r"\((19|20)\d\d\)", ds.citation), f"{ds.name}: citation without a year"


def test_scale_overlays_and_params_name_registered_datasets(repo_root):
    known = {d.name for d in registry.all()}
    for path in [repo_root / "params.yaml", *sorted((repo_root / "scales").glob("*.yaml"))]:
        names = yaml.safe_load(path.read_text())["download"]["datasets"]
        assert names and set(names) <= known, f"{path}: unknown {set(names) - known}"
        assert len(names) == len(set(names)), f"{path}: duplicates"


@fault("unknown dataset name: error listing every known name")
def test_unknown_name_lists_known_names():
    with pytest.raises(KeyError) as e:
        registry.get("imbd_sample")
    msg = str(e.value)
    assert msg.startswith("unknown dataset 'imbd_sample' (known datasets: ")
    assert all(d.name in msg for d in registry.all())


GOOD = {"path": "a.bin", "url": "https://example.org/a.bin", "sha256": "a" * 64, "bytes": 3}
ENTRY = {"title": "T", "scale": "sample", "license": "MIT", "citation": "X (2020)."}
BAD = [  # (id, file overrides or whole entry overrides, expected message fragment)
    ("no-checksum", {"sha256": None}, "datasets.d.files[0]: expected exactly one checksum key"),
    ("two-checksums", {"md5": "b" * 32}, "expected exactly one checksum key of ['sha256', 'sha1', 'md5'], got ['sha256', 'md5']"),
    ("short-hex", {"sha256": "abc"}, "datasets.d.files[0].sha256: expected 64 hex digits, got 'abc'"),
    ("absolute-path", {"path": "/etc/x"}, "datasets.d.files[0].path: expected a relative path without '..'"),
    ("dotdot-path", {"path": "../x"}, "datasets.d.files[0].path: expected a relative path"),
    ("ftp-url", {"url": "ftp://h/x"}, "datasets.d.files[0].url: expected an http(s):// or file:// URL"),
    ("bad-extract", {"extract": "rar"}, "datasets.d.files[0].extract: expected 'tar', 'zip' or nothing, got 'rar'"),
    ("negative-bytes", {"bytes": -1}, "datasets.d.files[0].bytes: expected a byte count >= 0, got -1"),
    ("bool-strip", {"strip": True}, "datasets.d.files[0].strip: expected an integer >= 0, got True"),
    ("bad-scale", {"@scale": "huge"}, "datasets.d.scale: expected 'sample' or 'full', got 'huge'"),
    ("no-citation", {"@citation": None}, "datasets.d.citation: expected a non-empty string"),
    ("no-files", {"@files": []}, "datasets.d.files: expected a non-empty list of files"),
    ("no-url-no-mirror", {"url": None}, "datasets.d.files[0].url: expected an http(s):// or file:// URL (or a mirror path)"),
    ("bad-alt", {"alt": [{"mirror": "b.bin"}]}, "datasets.d.files[0].alt[0]: expected exactly one checksum key"),
    ("content-with-sha", {"alt": [{"url": "https://h/x", "verify": "content", "md5": "b" * 32}]},
     "datasets.d.files[0].alt[0]: expected no checksum key with verify: content, got ['md5']"),
    ("unpinned-without-check", {"alt": [{"url": "https://h/x", "verify": "content"}]},
     "datasets.d.files[0]: a source with 'verify: content' needs the dataset's content check"),
    ("content-bad-archive", {"@content": {"archive": "x.tar", "include": ["*"], "sha256": "a" * 64}},
     "datasets.d.content.archive: expected one of the dataset's files ['a.bin'], got 'x.tar'"),
    ("content-no-include", {"@content": {"archive": "a.bin", "include": [], "sha256": "a" * 64}},
     "datasets.d.content.include: expected a non-empty list of glob patterns"),
    ("content-short-sha", {"@content": {"archive": "a.bin", "include": ["*"], "sha256": "abc"}},
     "datasets.d.content.sha256: expected 64 hex digits, got 'abc'"),
]


@fault("malformed datasets.yaml entry: DataError naming the dotted key and what was expected")
@pytest.mark.parametrize("override,fragment", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_parse_rejects_bad_entries(override, fragment):
    f = {**GOOD, **{k: v for k, v in override.items() if not k.startswith("@")}}
    entry = {**ENTRY, "files": [{k: v for k, v in f.items() if v is not None}]}
    entry.update({k[1:]: v for k, v in override.items() if k.startswith("@")})
    with pytest.raises(DataError) as e:
        registry.parse({"datasets": {"d": entry}}, "test.yaml")
    assert str(e.value).startswith("test.yaml: ") and fragment in str(e.value)


def test_parse_accepts_a_minimal_entry():
    ds = registry.parse({"datasets": {"d": {**ENTRY, "files": [GOOD]}}})["d"]
    assert ds.files[0] == registry.FileSpec("a.bin", "https://example.org/a.bin", "sha256", "a" * 64, 3)
    assert ds.total_bytes == 3
