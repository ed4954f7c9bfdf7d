"""Image index and decoding: folder layouts, decode failures named, mode conversion counted, seeded splits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlpipe.core.errors import DataError
from dlpipe.vision.index import IndexParams, index_images
from dlpipe.vision import images as I

P = IndexParams(seed=0, valid_pct=0.25, label_fraction=0.5, mode="RGB", max_per_class=None)


def _img(path: Path, mode: str, size=(12, 10), value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode in ("L", "P") else (value,) * len(mode)).save(path)
    return path


def _tree(root: Path, layout: dict[str, dict[str, int]], mode="RGB", ext="png"):
    for split, classes in layout.items():
        for cls, n in classes.items():
            for i in range(n):
                _img(root / split / cls / f"{i}.{ext}", mode)
    return root


def test_scan_keeps_splits_and_descends_single_top_folder(tmp_path):
    _tree(tmp_path / "archive" / "mnist_sample", {"train": {"3": 3, "7": 2}, "valid": {"3": 1, "7": 1}})
    root = I.dataset_root(tmp_path / "archive")
    assert root == tmp_path / "archive" / "mnist_sample"
    df = I.scan_folder(root)
    assert sorted(df["split"].value_counts().items()) == [("train", 5), ("valid", 2)]
    assert set(df["path"]) >= {"train/3/0.png", "valid/7/0.png"}


def test_scan_class_folders_without_split(tmp_path):
    _tree(tmp_path, {".": {"cat": 2, "dog": 3}}, ext="jpg")
    df = I.scan_folder(tmp_path)
    assert df["split"].isna().all() and sorted(df["label"].unique()) == ["cat", "dog"]


@pytest.mark.fault("Bad data", "image folder with no images: DataError saying the layout expected")
def test_empty_folder_says_what_was_expected(tmp_path):
    (tmp_path / "cat").mkdir()
    with pytest.raises(DataError, match=r"no images found; expected <class>/\*.jpg"):
        I.scan_folder(tmp_path)


@pytest.mark.fault("Bad data", "image that does not decode (truncated PNG): DataError naming the file")
def test_decode_failure_names_the_file(tmp_path):
    _tree(tmp_path, {"train": {"a": 2}, "valid": {"a": 1}})
    good = (tmp_path / "train" / "a" / "0.png").read_bytes()
    (tmp_path / "train" / "a" / "1.png").write_bytes(good[: len(good) // 2])   # truncated PNG
    with pytest.raises(DataError, match=r"train/a/1.png: image does not decode"):
        index_images(src=tmp_path, out=tmp_path / "out", p=P, format="folder")
    assert not (tmp_path / "out" / "index.csv").exists()


@pytest.mark.fault("Bad data", "a .jpg that is not an image: DataError naming the file")
def test_not_an_image_names_the_file(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_text("hello")
    with pytest.raises(DataError, match=r"x.jpg: image does not decode \(UnidentifiedImageError"):
        I.verify_image(bad)


@pytest.mark.fault("Bad data", "grayscale and RGBA images: converted to RGB and counted per mode")
def test_grayscale_and_alpha_converted_and_counted(tmp_path):
    _img(tmp_path / "train" / "a" / "g.png", "L")
    _img(tmp_path / "train" / "a" / "rgba.png", "RGBA")
    _img(tmp_path / "train" / "b" / "rgb.jpg", "RGB")
    _img(tmp_path / "valid" / "b" / "g2.png", "L")
    m = index_images(src=tmp_path, out=tmp_path / "out", p=P, format="folder")
    assert m["modes"] == {"L": 2, "RGB": 1, "RGBA": 1} and m["n_converted"] == 3
    for f in ("train/a/g.png", "train/a/rgba.png"):
        arr = I.load_image(tmp_path / f, "RGB", size=8)
        assert arr.shape == (8, 8, 3) and arr.dtype == np.uint8
    assert I.load_image(tmp_path / "train/a/g.png", "L").shape == (10, 12, 1)


@pytest.mark.parametrize("size,shape", [((40, 20), (16, 16, 3)), ((20, 40), (16, 16, 3)), ((10, 10), (16, 16, 3))])
def test_resize_shortest_side_then_centre_crop(tmp_path, size, shape):
    im = Image.new("RGB", size)
    im.paste((255, 0, 0), (size[0] // 2 - 1, size[1] // 2 - 1, size[0] // 2 + 1, size[1] // 2 + 1))
    im.save(tmp_path / "x.png")
    arr = I.load_image(tmp_path / "x.png", "RGB", size=16)
    assert arr.shape == shape and arr[8, 8, 0] > 100      # the centre stays in the centre


def test_seeded_stratified_split_and_balanced_subset():
    labels = np.array(["a"] * 40 + ["b"] * 20 + ["c"] * 4)
    s1, s2 = I.stratified_split(labels, 0.25, seed=3), I.stratified_split(labels, 0.25, seed=3)
    assert (s1 == s2).all() and not (s1 == I.stratified_split(labels, 0.25, seed=4)).all()
    assert [(s1[labels == c] == "valid").sum() for c in "abc"] == [10, 5, 1]
    sub = I.balanced_subset(labels, 0.1, seed=0)
    assert [(labels[sub] == c).sum() for c in "abc"] == [4, 2, 1]     # at least one per class
    assert (np.diff(sub) > 0).all()


def test_index_folder_outputs(tmp_path):
    _tree(tmp_path / "raw", {".": {"cat": 4, "dog": 4, "wild": 4}}, ext="jpg")
    m = index_images(src=tmp_path / "raw", out=tmp_path / "out", p=P, format="folder")
    import pandas as pd
    df = pd.read_csv(tmp_path / "out" / "index.csv")
    assert list(df.columns) == ["path", "label", "split"] and len(df) == 12
    assert m["per_split"] == {"train": 9, "valid": 3}
    labeled = np.load(tmp_path / "out" / "labeled.npy")
    assert (df.loc[labeled, "split"] == "train").all() and m["n_labeled"] == len(labeled) == 6
    again = index_images(src=tmp_path / "raw", out=tmp_path / "out2", p=P, format="folder")
    assert again == m and (tmp_path / "out" / "index.csv").read_bytes() == (tmp_path / "out2" / "index.csv").read_bytes()
