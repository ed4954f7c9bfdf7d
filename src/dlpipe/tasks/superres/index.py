"""Index the super-resolution training photos (stage ``index_photos``).

The pool is every image under the SRC folders (natural photos already mirrored: raccoon, CamVid, AFHQ,
the style task's content photos — never the Set5/Set14 benchmarks). Each file must decode; a photo whose
short side is below ``min_side`` cannot hold a patch and is left out, counted. A seeded ``n_valid`` of
the rest is held out for the per-epoch validation PSNR. Output OUT/photos.csv: path (as given on the
command line + the file's path under it), source (the SRC folder), height, width, split (train/valid).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from dlpipe.core.atomic import atomic_dir
from dlpipe.core.errors import DataError, ParamsError
from dlpipe.tasks.superres.params import IndexParams
from dlpipe.vision.images import IMAGE_EXTS, load_image

PHOTOS = "photos.csv"


def list_images(root: Path) -> list[Path]:
    """Every image file under ``root`` (hidden folders skipped), sorted."""
    if not Path(root).is_dir():
        raise DataError(f"{root}: photo folder not found")
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image that decodes fully (a bad file fails naming it)."""
    h, w = load_image(path, "RGB").shape[:2]
    return h, w


def split_rows(n: int, n_valid: int, seed: int) -> np.ndarray:
    """A seeded 'train'/'valid' label per row, ``n_valid`` of them valid."""
    if n_valid >= n:
        raise ParamsError(f"superres.index.n_valid: {n_valid}: expected fewer than the {n} usable photos")
    split = np.array(["train"] * n, dtype=object)
    split[np.random.default_rng(seed).permutation(n)[:n_valid]] = "valid"
    return split


def index_photos(*, out: Path, src: list[Path], p: IndexParams) -> dict:
    """Write OUT/photos.csv; returns counts per source and split, and how many were too small."""
    files = [(str(root), f) for root in src for f in list_images(root)]
    if not files:
        raise DataError(f"{', '.join(map(str, src))}: no image files found")
    if p.max_images is not None and len(files) > p.max_images:
        keep = np.sort(np.random.default_rng(p.seed).permutation(len(files))[: p.max_images])
        files = [files[i] for i in keep]
    rows = []
    for root, f in tqdm(files, desc="index_photos", unit="img", mininterval=2.0):
        h, w = image_size(f)
        rows.append({"path": f.as_posix(), "source": root, "height": h, "width": w})
    df = pd.DataFrame(rows)
    small = df[np.minimum(df.height, df.width) < p.min_side]
    df = df[np.minimum(df.height, df.width) >= p.min_side].reset_index(drop=True)
    df["split"] = split_rows(len(df), p.n_valid, p.seed)
    with atomic_dir(out) as tmp:
        df.to_csv(tmp / PHOTOS, index=False)
    return {"n_photos": len(df), "n_train": int((df.split == "train").sum()), "n_valid": int((df.split == "valid").sum()),
            "too_small": len(small), "per_source": {s: int(n) for s, n in df.groupby("source").size().items()},
            "megapixels": round(float((df.height * df.width).sum()) / 1e6, 2)}


def load_photos(index: Path, split: str, min_side: int | None = None) -> list[np.ndarray]:
    """The uint8 (H, W, 3) photos of one split of index_photos' output."""
    path = Path(index) / PHOTOS
    if not path.is_file():
        raise DataError(f"{path}: not found (run index_photos first)")
    df = pd.read_csv(path)
    rows = df[df.split == split]
    if rows.empty:
        raise DataError(f"{path}: no photos in split {split!r}")
    photos = [load_image(f, "RGB") for f in tqdm(rows.path, desc=f"load {split}", unit="img", mininterval=2.0)]
    if min_side is not None:
        bad = [f for f, im in zip(rows.path, photos) if min(im.shape[:2]) < min_side]
        if bad:
            raise DataError(f"{bad[0]}: smaller than {min_side} px on a side, which the patch needs "
                            f"(raise superres.index.min_side and re-run index_photos)")
    return photos
