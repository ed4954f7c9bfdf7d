"""Image index and decoding: ImageNet-style folder trees, seeded splits, label subsets, safe loading.

Folder layouts read by :func:`scan_folder` (class = folder name, splits kept when present)::

    root/train/<class>/*.png        root/<class>/*.jpg        root/<one dir>/train/<class>/...
    root/valid/<class>/*.png        (no split: a seeded,      (archives that unpack into a
                                     stratified one is made)   single top folder)

The index table (index.csv) has columns ``path`` (relative to root, POSIX), ``label`` (class name)
and ``split``; row order is sorted by (split, label, path) so it does not depend on the filesystem.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
from PIL import Image

from dlpipe.core.errors import DataError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
SPLIT_NAMES = {"train": "train", "valid": "valid", "val": "valid", "validation": "valid", "test": "test"}


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def dataset_root(root: str | os.PathLike) -> Path:
    """``root``, or its only sub-folder when an archive unpacked into one top folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    subs = _subdirs(root)
    if len(subs) == 1 and not any(p.suffix.lower() in IMAGE_EXTS for p in root.iterdir()):
        inner = _subdirs(subs[0])
        if inner and any(d.name in SPLIT_NAMES for d in inner):
            return subs[0]
    return root


def folder_image_paths(root: str | os.PathLike) -> list[str]:
    """Every image file under ``root`` (hidden folders skipped), as sorted POSIX paths relative to it."""
    root = Path(root)
    return sorted(p.relative_to(root).as_posix() for d in _subdirs(root) for p in _images(d))


def index_paths(paths: list[str], where: str | os.PathLike) -> pd.DataFrame:
    """Index relative image paths: columns path, label (class folder), split (None when there are no
    split folders). ``<split>/<class>/...`` when any top folder is a split name, else ``<class>/...``."""
    parts = [p.split("/") for p in paths]
    has_split = any(len(q) >= 3 and q[0] in SPLIT_NAMES for q in parts)
    if has_split:
        rows = [(p, q[1], SPLIT_NAMES[q[0]]) for p, q in zip(paths, parts)
                if len(q) >= 3 and q[0] in SPLIT_NAMES and not q[1].startswith(".")]
    else:
        rows = [(p, q[0], None) for p, q in zip(paths, parts) if len(q) >= 2 and not q[0].startswith(".")]
    if not rows:
        raise DataError(f"{where}: no images found; expected <class>/*.jpg or <split>/<class>/*.jpg "
                        f"(extensions: {', '.join(sorted(IMAGE_EXTS))})")
    return pd.DataFrame(rows, columns=["path", "label", "split"])


def scan_folder(root: str | os.PathLike) -> pd.DataFrame:
    """Index an ImageNet-style tree: columns path (relative to ``root``), label, split (None if absent)."""
    return index_paths(folder_image_paths(root), root)


def verify_image(file: str | os.PathLike | BinaryIO, name: str | None = None) -> str:
    """Check that an image (path or open binary file) decodes fully; returns its PIL mode.

    ``name`` is how errors name it (default: the path).
    """
    try:
        with Image.open(file) as im:
            im.verify()           # structure and checksums; the image is unusable afterwards
        if hasattr(file, "seek"):
            file.seek(0)
        with Image.open(file) as im:
            im.load()             # the pixels really decode (catches truncated data)
            return im.mode
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, DecompressionBombError...)
        raise DataError(f"{name or file}: image does not decode ({type(e).__name__}: {e})") from None


def load_image(file: str | os.PathLike | BinaryIO, mode: str, size: int | None = None,
               name: str | None = None) -> np.ndarray:
    """Decode an image (path or open binary file) to ``mode`` ("RGB"/"L"); with ``size``, resize the
    shortest side then centre-crop. ``name`` is how errors name it (default: the path).

    Returns (size, size, C) uint8 (HWC; C = 3 for RGB, 1 for L).
    """
    try:
        with Image.open(file) as im:
            im = _to_mode(im, mode)
            if size is not None:
                im = resize_crop(im, size)
            arr = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{name or file}: image does not decode ({type(e).__name__}: {e})") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert to ``mode``; alpha is composited on black rather than dropped raw."""
    if im.mode == mode:
        return im
    if "A" in im.getbands() or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(bg, rgba)
    return im.convert(mode)


def resize_crop(im: Image.Image, size: int) -> Image.Image:
    """Resize so the shortest side is ``size`` (bilinear), then take the central size x size crop."""
    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def needs_conversion(pil_mode: str, mode: str) -> bool:
    """True when an image of ``pil_mode`` must be converted to ``mode`` (e.g. grayscale -> RGB)."""
    return pil_mode != mode


def stratified_split(labels: np.ndarray, n_valid: int | float, seed: int) -> np.ndarray:
    """Seeded split array ("train"/"valid"), stratified by label.

    ``n_valid``: a fraction of each class (float < 1) or a total count (int), spread over classes
    in proportion to their size.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), "train", dtype=object)
    classes, counts = np.unique(labels, return_counts=True)
    frac = n_valid if isinstance(n_valid, float) else n_valid / len(labels)
    for c, n in zip(classes, counts):
        rows = np.flatnonzero(labels == c)
        k = min(n - 1, max(1, round(n * frac))) if n > 1 else 0
        split[rng.permutation(rows)[:k]] = "valid"
    return split


def balanced_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted positions of a seeded, class-balanced subset: ``max(1, round(fraction * n_c))`` per class."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        keep.append(rng.permutation(rows)[: max(1, round(fraction * len(rows)))])
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def cap_per_class(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Sorted positions keeping at most ``max_per_class`` seeded items of each class (None: all)."""
    labels = np.asarray(labels)
    if max_per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def mode_counts(modes: list[str]) -> dict[str, int]:
    """``{"L": 12, "RGB": 30}`` sorted by mode name, for metrics."""
    return dict(sorted(Counter(modes).items()))
