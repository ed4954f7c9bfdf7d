"""Segmentation batches: uint8 images and label masks in RAM, augmented together (torchvision.transforms.v2).

Each item is ``(x, y)``: x float (3, h, w) on the 0-1 scale (the model normalises), y int64 (h, w)
labels with the void value where unlabelled. Training items are zoomed, cropped and flipped with the
mask moving with the pixels (v2 resizes a ``tv_tensors.Mask`` by nearest neighbour and pads it with
void). ``base`` is the resolution's share of the full size: progressive resizing sets it between
phases (:class:`ProgressiveResize`), and zoom range and crop scale with it.

Random draws come from torch's global RNG, which the Learner seeds and checkpoints.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate
from torchvision import tv_tensors
from torchvision.transforms import v2

from dlpipe.train.callbacks import Callback


class SegDataset(Dataset):
    """Image/mask pairs; ``train``: zoom (``scale`` range) + random crop (``crop`` at full resolution) +
    flip; else a resize to ``size`` (h, w) (None: as stored). ``repeat``: each image this many times per
    epoch (a tiny training set's epoch of a few steps would otherwise spend most of its time validating
    and redrawing reports), each time with its own random draws."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, void: int, *, train: bool = False,
                 scale: Sequence[float] = (1.0, 1.0), crop: Sequence[int] | None = None, flip: bool = False,
                 size: Sequence[int] | None = None, repeat: int = 1):
        if images.shape[:3] != masks.shape:
            raise ValueError(f"images {images.shape} and masks {masks.shape}: expected (n, H, W, 3) and (n, H, W)")
        self.images, self.masks, self.void = images, masks, void
        self.train, self.scale, self.crop, self.flip, self.size = train, tuple(scale), crop, flip, size
        self.full = tuple(images.shape[1:3])
        self.repeat = repeat
        self.base = 1.0

    @property
    def base(self) -> float:
        return self._base

    @base.setter
    def base(self, value: float) -> None:
        """The resolution as a share of the full size; rebuilds the transform."""
        self._base = float(value)
        self.tfm = self._make_tfm()

    def _make_tfm(self) -> v2.Transform:
        if not self.train:
            return v2.Resize(tuple(self.size), antialias=True) if self.size else v2.Identity()
        crop = tuple(round(c * self.base) for c in (self.crop or self.full))
        tfms = [v2.RandomCrop(crop, pad_if_needed=True, fill={tv_tensors.Image: 0.0, tv_tensors.Mask: self.void})]
        if self.flip:
            tfms.append(v2.RandomHorizontalFlip())
        return v2.Compose(tfms)

    def _zoom(self, x: tv_tensors.Image, y: tv_tensors.Mask):
        """Resize both to base x U(scale) of the full size (the mask by nearest neighbour: v2 dispatches on type)."""
        lo, hi = self.scale
        z = self.base * (lo + (hi - lo) * float(torch.rand(())))
        size = [max(1, round(s * z)) for s in self.full]
        if size == list(x.shape[-2:]):
            return x, y
        return v2.functional.resize(x, size, antialias=True), v2.functional.resize(y, size)

    def __len__(self) -> int:
        return len(self.images) * self.repeat

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        i %= len(self.images)
        x = tv_tensors.Image(torch.from_numpy(self.images[i]).permute(2, 0, 1).float().div_(255.0))   # (3, H, W)
        y = tv_tensors.Mask(torch.from_numpy(self.masks[i].astype(np.int64)))                           # (H, W)
        if self.train:
            x, y = self._zoom(x, y)
        x, y = self.tfm(x, y)
        return x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)


def channels_last_collate(batch):
    """Stack items; images in NHWC memory order (same (N, C, H, W) shape): oneDNN's fast convolutions
    (~2x for the U-Net on this CPU)."""
    x, y = default_collate(batch)
    return x.contiguous(memory_format=torch.channels_last), y


class ProgressiveResize(Callback):
    """Before each fit (phase), set the training dataset's resolution from ``{phase name: base}``
    (2018 lesson 14, DAWNBench: small images first, then full size). Resume re-enters a phase
    through ``before_fit`` too, so a resumed run trains at the right size."""
    order = -10

    def __init__(self, bases: dict[str, float]):
        self.bases = dict(bases)

    def before_fit(self) -> None:
        ds = self.learn.train_dl.dataset
        ds.base = self.bases.get(self.learn.phase, 1.0)
