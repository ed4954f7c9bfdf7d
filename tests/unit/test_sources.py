"""Image sources: a tar archive read in place gives the same index and pixels as its extracted folder."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlpipe.core.errors import DataError
from dlpipe.vision.index import IndexParams, index_images
from dlpipe.vision import images as I
from dlpipe.vision.sources import FolderSource, TarSource, open_source
from dlpipe.vision.transforms import random_affine

P = IndexParams(seed=0, valid_pct=0.25, label_fraction=0.5, mode="RGB", max_per_class=2)


def _tree(root: Path) -> Path:
    """mnist_sample's layout in miniature: top/{train,valid}/{3,7}/*.png, plus a non-image file."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("valid", 2)):
        for cls in ("3", "7"):
            for i in range(n):
                (root / "top" / split / cls).mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (6, 6), dtype=np.uint8)).save(root / "top" / split / cls / f"{i}.png")
    (root / "top" / "labels.csv").write_text("name,label\n")
    return root


def _tgz(folder: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(folder / "top", arcname="top")
    return dest


@pytest.fixture
def both(tmp_path) -> tuple[Path, Path]:
    folder = _tree(tmp_path / "folder")
    return folder, _tgz(folder, tmp_path / "data.tgz")


def test_open_source_picks_the_kind(both, tmp_path):
    folder, tgz = both
    assert isinstance(open_source(folder), FolderSource) and isinstance(open_source(tgz), TarSource)
    (tmp_path / "x.txt").write_text("no")
    with pytest.raises(DataError, match="x.txt: expected an image folder or a tar archive"):
        open_source(tmp_path / "x.txt")


def test_archive_paths_match_the_extracted_folder(both):
    folder, tgz = both
    assert TarSource(tgz).paths() == FolderSource(folder).paths()
    assert TarSource(tgz).paths()[0] == "train/3/0.png"          # the single top folder is dropped


def test_archive_pixels_match_the_folder(both):
    folder, tgz = both
    fs, ts = FolderSource(folder), TarSource(tgz)
    rels = ts.paths()
    ts.prefetch(rels)
    for rel in rels:
        np.testing.assert_array_equal(I.load_image(ts.open(rel), "L", 4, ts.name(rel)),
                                      I.load_image(fs.open(rel), "L", 4))


def test_index_from_archive_equals_index_from_folder(both, tmp_path):
    folder, tgz = both
    m_dir = index_images(src=folder, out=tmp_path / "a", p=P, format="folder")
    m_tgz = index_images(src=tgz, out=tmp_path / "b", p=P, format="folder")
    assert m_dir == m_tgz and m_tgz["per_split"] == {"train": 4, "valid": 4}   # capped at 2 per class
    assert (tmp_path / "a" / "index.csv").read_bytes() == (tmp_path / "b" / "index.csv").read_bytes()
    assert np.array_equal(np.load(tmp_path / "a" / "labeled.npy"), np.load(tmp_path / "b" / "labeled.npy"))


def test_missing_member_and_bad_member_are_named(both, tmp_path):
    _, tgz = both
    with pytest.raises(DataError, match=r"data.tgz: 1 indexed image\(s\) not in the archive, e.g. 'train/3/9.png'"):
        TarSource(tgz).prefetch(["train/3/9.png"])
    bad = tmp_path / "bad.tgz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("cls/broken.png")
        info.size = 10
        tar.addfile(info, io.BytesIO(b"\x89PNG12345x"))
    with pytest.raises(DataError, match=r"bad.tgz:cls/broken.png: image does not decode"):
        index_images(src=bad, out=tmp_path / "out", p=P, format="folder")


def test_unsafe_member_names_fail(tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escape.png")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DataError, match="parent-relative"):
        TarSource(evil).paths()


def test_random_affine_is_seeded_keeps_shape_and_fills_outside():
    x = torch.zeros(3, 16, 16)
    fill = torch.tensor([-1.0, 0.5, 2.0]).view(3, 1, 1)
    torch.manual_seed(0)
    a = random_affine(x, 30.0, 0.2, 0.2, fill)
    torch.manual_seed(0)
    b = random_affine(x, 30.0, 0.2, 0.2, fill)
    assert a.shape == x.shape and torch.equal(a, b)
    ident = random_affine(x + 1.0, 0.0, 0.0, 0.0, fill)         # no rotation/shift/zoom: the image itself
    assert torch.allclose(ident, x + 1.0, atol=1e-5)
    torch.manual_seed(1)
    shifted = random_affine(torch.ones(1, 16, 16), 0.0, 0.5, 0.0, torch.full((1, 1, 1), -3.0))
    assert (shifted < 0).any() and (shifted <= 1.0 + 1e-5).all()   # uncovered pixels take the fill value
