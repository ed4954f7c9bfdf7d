"""Super-resolution batches: random high-resolution patches of natural photos, each with its bicubic
downscale made here, in the data pipeline (the degradation the benchmarks use).

Training items: a random ``patch`` x ``patch`` crop (at ``base`` x the full patch size, so
:class:`~dlpipe.vision.seg_data.ProgressiveResize` trains on small patches first), a random one of the
8 flips/rotations (the dihedral group: SR has no preferred orientation), then the downscale::

    photo uint8 (H, W, 3) -> hr crop (P, P, 3) -> lr = bicubic(hr, P / scale)
    item: lr float (3, P/scale, P/scale) 0-1,  hr float (3, P, P) 0-1

Validation items are the centre ``patch`` crop of each held-out photo, fixed. Random draws come from
torch's global RNG, which the Learner seeds and checkpoints (exact resume).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from dlpipe.vision.sr_quality import downscale


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) 0-1."""
    return torch.from_numpy(np.require(img, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255.0)   # PIL arrays are read-only


def dihedral(img: np.ndarray, k: int) -> np.ndarray:
    """The k-th (0-7) of the 8 flips/rotations of (H, W, C)."""
    if k & 4:
        img = img.transpose(1, 0, 2)
    if k & 2:
        img = img[::-1]
    if k & 1:
        img = img[:, ::-1]
    return img


class PatchDataset(Dataset):
    """(lr, hr) patch pairs of ``photos`` at ``scale``; ``train``: random crops + dihedral augmentation,
    ``repeat`` crops per photo per epoch; else each photo's centre crop."""

    def __init__(self, photos: Sequence[np.ndarray], scale: int, patch: int, train: bool, repeat: int = 1):
        small = [i for i, p in enumerate(photos) if min(p.shape[:2]) < patch]
        if small:
            raise ValueError(f"PatchDataset: photos {small[:5]} are smaller than the {patch}-px patch")
        if patch % scale:
            raise ValueError(f"PatchDataset: patch {patch} is not a multiple of scale {scale}")
        self.photos, self.scale, self.patch, self.train = list(photos), scale, patch, train
        self.repeat = repeat if train else 1
        self.base = 1.0

    def size(self) -> int:
        """The current patch side: ``base`` x ``patch``, rounded down to a multiple of the scale."""
        return max(self.scale, int(round(self.patch * self.base)) // self.scale * self.scale)

    def __len__(self) -> int:
        return len(self.photos) * self.repeat

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.photos[i % len(self.photos)]
        h, w = img.shape[:2]
        p = self.size()
        if self.train:
            y, x, k = (int(v) for v in (torch.randint(h - p + 1, ()), torch.randint(w - p + 1, ()), torch.randint(8, ())))
            hr = np.ascontiguousarray(dihedral(img[y:y + p, x:x + p], k))
        else:
            y, x = (h - p) // 2, (w - p) // 2
            hr = np.ascontiguousarray(img[y:y + p, x:x + p])
        return to_tensor(downscale(hr, self.scale)), to_tensor(hr)
