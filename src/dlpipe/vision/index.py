"""Index an image dataset (stage ``index_images``): which file is which class in which split.

Outputs::

    folder datasets  OUT/index.csv (path,label,split)   OUT/labeled.npy (index rows kept at label_fraction)
                     (an image tree, as a folder or a tar archive read in place)
    MNIST (IDX)      OUT/{train,valid}_{images,labels}.npy   uint8 (n, 28, 28) / int64 (n,)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dlpipe.io.arrays import save_npy
from dlpipe.core.atomic import write_text
from dlpipe.vision import images as I
from dlpipe.vision.idx import read_mnist
from dlpipe.vision.sources import open_source

MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@dataclass(frozen=True)
class IndexParams:
    seed: int
    valid_pct: float = field(metadata=dict(gt=0.0, lt=1.0))          # held out when a dataset has no split
    label_fraction: float = field(metadata=dict(gt=0.0, le=1.0))     # labeled.npy: share of train labels kept
    mode: Literal["RGB", "L"]                                        # what the backbone reads
    max_per_class: int | None = field(metadata=dict(ge=1))           # cap per class and split (tiny scale)


# ---- index -----------------------------------------------------------------------------------
def index_images(*, src: Path, out: Path, p: IndexParams, format: Literal["folder", "idx"]) -> dict:  # noqa: A002
    """Index a dataset: folder trees -> index.csv + labeled.npy; MNIST IDX -> split .npy arrays."""
    return _index_idx(Path(src), Path(out), p) if format == "idx" else _index_folder(Path(src), Path(out), p)


def _index_folder(src: Path, out: Path, p: IndexParams) -> dict:
    source = open_source(src)
    df = I.index_paths(source.paths(), src)
    if df["split"].isna().all():
        df["split"] = I.stratified_split(df["label"].to_numpy(), p.valid_pct, p.seed)
    df = pd.concat([g.iloc[I.cap_per_class(g["label"].to_numpy(), p.max_per_class, p.seed)]
                    for _, g in df.groupby("split", sort=True)])
    df = df.sort_values(["split", "label", "path"], kind="stable").reset_index(drop=True)
    source.prefetch(df["path"])              # only the capped rows are read and decoded
    modes = [I.verify_image(source.open(f), source.name(f))
             for f in tqdm(df["path"], desc="verify", unit="img", mininterval=1.0)]
    train = np.flatnonzero(df["split"].to_numpy() == "train")
    labeled = train[I.balanced_subset(df["label"].to_numpy()[train], p.label_fraction, p.seed)]
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "index.csv", df.to_csv(index=False, lineterminator="\n"))
    save_npy(out / "labeled.npy", labeled.astype(np.int64))
    converted = sum(I.needs_conversion(m, p.mode) for m in modes)
    return {"n_images": len(df), "n_classes": int(df["label"].nunique()),
            "per_split": {k: int(v) for k, v in df["split"].value_counts().sort_index().items()},
            "modes": I.mode_counts(modes), "n_converted": int(converted),
            "n_labeled": len(labeled), "label_fraction": p.label_fraction}


def _index_idx(src: Path, out: Path, p: IndexParams) -> dict:
    x, y = read_mnist(*(src / f for f in MNIST_FILES))
    keep = I.cap_per_class(y, p.max_per_class, p.seed)
    x, y = x[keep], y[keep]
    perm = np.random.default_rng(p.seed).permutation(len(y))
    n_valid = round(len(y) * p.valid_pct)                      # 10k t10k digits -> 8000 / 2000
    parts = {"train": perm[n_valid:], "valid": perm[:n_valid]}
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in parts.items():
        rows = np.sort(rows)
        save_npy(out / f"{split}_images.npy", x[rows])
        save_npy(out / f"{split}_labels.npy", y[rows])
    return {"n_images": len(y), "n_classes": int(len(np.unique(y))),
            "per_split": {k: len(v) for k, v in parts.items()}, "modes": {"L": len(y)},
            "n_converted": len(y) if p.mode != "L" else 0}
