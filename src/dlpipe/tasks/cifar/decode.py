"""CIFAR-10 JPEGs -> uint8 arrays (stage ``decode_cifar``), read from the archive in place.

Output (``OUT``)::

    train_images.npy  uint8 (n, 32, 32, 3)    train_labels.npy  int64 (n,)     50,000 at full size
    test_images.npy   uint8 (n, 32, 32, 3)    test_labels.npy   int64 (n,)     10,000
    classes.txt       the ten class names, label order

The archive holds ``train/<class>/NNNN.jpg`` and ``test/<class>/NNNN.jpg`` (the GitHub archive adds
one top folder, dropped). Label order is the standard CIFAR-10 order, which is alphabetical.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dlpipe.core.atomic import write_text
from dlpipe.core.errors import DataError
from dlpipe.io.arrays import save_npy
from dlpipe.tasks.cifar.params import DecodeParams
from dlpipe.vision import images as I
from dlpipe.vision.sources import open_source

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")
SIZE = 32


def check_layout(paths: list[str], df, src: Path) -> None:
    """Every image is train|test/<class>/<file> with one of the ten classes; each class has images."""
    odd = [q for q in paths if q.count("/") != 2 or q.split("/", 1)[0] not in SPLITS]
    if odd:
        raise DataError(f"{src}: unexpected image path '{odd[0]}' (expected train/<class>/*.jpg or test/<class>/*.jpg)")
    bad = df[~df["label"].isin(CLASSES)]
    if len(bad):
        raise DataError(f"{src}: unexpected class folder '{bad['path'].iloc[0].rsplit('/', 1)[0]}' "
                        f"(expected the CIFAR-10 classes: {', '.join(CLASSES)})")
    for split in SPLITS:
        have = set(df.loc[df["split"] == split, "label"])
        if have != set(CLASSES):
            raise DataError(f"{src}: {split}/ has no images of class(es) {sorted(set(CLASSES) - have)}")


def decode_cifar(*, src: Path, out: Path, p: DecodeParams) -> dict:
    """Decode the (capped) images of both splits to arrays; a bad image or folder fails naming it."""
    source = open_source(src)
    paths = source.paths()
    df = I.index_paths(paths, src)
    check_layout(paths, df, Path(src))
    parts = {}
    for split in SPLITS:
        rows = df[df["split"] == split].sort_values(["label", "path"], kind="stable")
        keep = I.cap_per_class(rows["label"].to_numpy(), p.max_per_class, p.seed)
        parts[split] = rows.iloc[keep]
    source.prefetch(list(parts["train"]["path"]) + list(parts["test"]["path"]))
    out = Path(out)
    metrics = {"classes": len(CLASSES), "size": SIZE}
    for split, rows in parts.items():
        x = np.empty((len(rows), SIZE, SIZE, 3), np.uint8)
        for i, rel in enumerate(tqdm(rows["path"], desc=f"decode {split}", unit="img", mininterval=1.0)):
            img = I.load_image(source.open(rel), "RGB", name=source.name(rel))
            if img.shape != (SIZE, SIZE, 3):
                raise DataError(f"{source.name(rel)}: expected a {SIZE}x{SIZE} image, got {img.shape[1]}x{img.shape[0]}")
            x[i] = img
        y = rows["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy(np.int64)
        save_npy(out / f"{split}_images.npy", x)
        save_npy(out / f"{split}_labels.npy", y)
        metrics[f"n_{split}"] = len(y)
        metrics[f"{split}_per_class_min"] = int(np.bincount(y, minlength=len(CLASSES)).min())
    write_text(out / "classes.txt", "\n".join(CLASSES) + "\n")
    return metrics
