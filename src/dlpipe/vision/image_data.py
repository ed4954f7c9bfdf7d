"""Image datasets for fine-tuning, from-scratch training and evaluation, read through index.csv.

Images are decoded once into RAM as uint8 ``(n, size, size, C)`` (the index stage's order), then
turned into normalised tensors by :class:`dlpipe.vision.transforms.ImageArrayDataset`. Training
adds augmentation: random crop with padding, then a small random affine (rotation, shift, zoom;
:func:`dlpipe.vision.transforms.random_affine`), which draws from torch's global RNG (seeded and
checkpointed by the Learner), so augmented epochs are reproducible. ``raw`` may be an image folder
or a tar archive read in place (:mod:`dlpipe.vision.sources`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from dlpipe.core.errors import DataError
from dlpipe.train.predict import predict
from dlpipe.vision import images as I
from dlpipe.vision.sources import open_source
from dlpipe.vision.transforms import ImageArrayDataset, channel_stats, random_affine


@dataclass(frozen=True)
class AugParams:
    pad: int = field(metadata=dict(ge=0))                       # random-crop padding, px
    rotate: float = field(metadata=dict(ge=0.0, le=180.0))      # max degrees either way
    translate: float = field(metadata=dict(ge=0.0, lt=1.0))     # max shift, fraction of the side
    zoom: float = field(metadata=dict(ge=0.0, lt=1.0))          # scale drawn from [1 - zoom, 1 + zoom]


def read_index(index_dir: Path) -> pd.DataFrame:
    """index.csv with its columns checked."""
    path = Path(index_dir) / "index.csv"
    if not path.is_file():
        raise DataError(f"{path}: index not found: run the index stage")
    df = pd.read_csv(path, dtype={"path": str, "label": str, "split": str})
    missing = {"path", "label", "split"} - set(df.columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {sorted(missing)}; expected path,label,split")
    return df


def load_split(raw: Path, index_dir: Path, split: str, mode: str, size: int, classes: list[str],
               rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one split: uint8 images (n, size, size, C), int64 labels, and their index.csv rows.

    Args:
        rows: index.csv rows to keep (e.g. labeled.npy); None keeps the whole split.
    """
    df = read_index(index_dir)
    g = df[df["split"] == split]
    if rows is not None:
        g = g[g.index.isin(rows)]
    if len(g) == 0:
        raise DataError(f"{index_dir}/index.csv: no '{split}' rows" + (" among the labeled rows" if rows is not None else ""))
    unknown = sorted(set(g["label"]) - set(classes))
    if unknown:
        raise DataError(f"{index_dir}/index.csv: labels {unknown[:5]} are not among the model's classes {classes}")
    source = open_source(raw)
    source.prefetch(g["path"])                                  # a .tgz: one pass over the archive
    x = np.stack([I.load_image(source.open(f), mode, size, source.name(f))
                  for f in tqdm(g["path"], desc=f"decode {split}", unit="img", mininterval=1.0, leave=False)])
    y = g["label"].map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    return x, y, g.index.to_numpy(np.int64)


class Augmented(Dataset):
    """``base`` items with a random affine on the image tensor (fill = the normalised black level)."""

    def __init__(self, base: ImageArrayDataset, aug: AugParams):
        self.base, self.aug = base, aug

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        a = self.aug
        if a.rotate == 0 and a.translate == 0 and a.zoom == 0:
            return x, y
        return random_affine(x, a.rotate, a.translate, a.zoom, self.base.fill), y


def image_datasets(raw: Path, index_dir: Path, extra: dict, in_ch: int, labeled: Path | None,
                   aug: AugParams) -> tuple[Dataset, Dataset]:
    """(augmented train, plain valid) datasets normalised as ``extra["normalize"]`` says."""
    rows = np.load(labeled) if labeled is not None else None
    mean, std = extra["normalize"]["mean"], extra["normalize"]["std"]
    args = (extra["image_mode"], extra["size"], list(extra["classes"]))
    xt, yt, _ = load_split(raw, index_dir, "train", *args, rows=rows)
    xv, yv, _ = load_split(raw, index_dir, "valid", *args)
    train = ImageArrayDataset(xt, yt, in_ch, mean, std, pad=aug.pad)
    return Augmented(train, aug), ImageArrayDataset(xv, yv, in_ch, mean, std)


def train_stats(raw: Path, index_dir: Path, mode: str, size: int) -> tuple[list[str], dict]:
    """Sorted class names (as precompute orders them) and the train images' per-channel mean/std."""
    classes = sorted(read_index(index_dir)["label"].unique())
    x, _, _ = load_split(raw, index_dir, "train", mode, size, classes)
    mean, std = channel_stats(x)
    return classes, {"mean": mean, "std": std}


def to_tensor_batches(x: np.ndarray, in_ch: int, normalize: dict, bs: int):
    """Normalised float batches (b, in_ch, H, W) of uint8 images, in order."""
    from dlpipe.vision.transforms import to_float
    for i in range(0, len(x), bs):
        yield to_float(x[i:i + bs], in_ch, normalize["mean"], normalize["std"])


def predict_images(model: torch.nn.Module, x: np.ndarray, in_ch: int, normalize: dict, bs: int,
                   device: str = "auto") -> torch.Tensor:
    """Model outputs (n, n_out) for uint8 images (eval mode, on ``device``; the result on CPU)."""
    return predict(model, to_tensor_batches(x, in_ch, normalize, bs), device)
