"""Tensor transforms and a dataset over in-RAM uint8 images.

Images travel as uint8 ``(n, H, W, C)`` arrays (HWC, as decoded) until a dataset turns one item into
a normalised float ``(C, H, W)`` tensor. Random augmentation draws from torch's global RNG, which the
Learner seeds and checkpoints, so augmented epochs are reproducible and resumable.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


def as_nhwc(images: np.ndarray) -> np.ndarray:
    """(n, H, W) grayscale -> (n, H, W, 1); (n, H, W, C) unchanged."""
    return images[..., None] if images.ndim == 3 else images


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (on the 0-1 scale) of uint8 (n, H, W[, C]) images, chunked (float64 sums)."""
    images = as_nhwc(images)
    c = images.shape[-1]
    s, s2, n = np.zeros(c), np.zeros(c), 0
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk].reshape(-1, c).astype(np.float64) / 255.0
        s += x.sum(0)
        s2 += (x * x).sum(0)
        n += len(x)
    mean = s / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 1e-12))
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def to_float(images: np.ndarray, in_ch: int, mean, std) -> torch.Tensor:
    """uint8 (n, H, W[, C]) -> normalised float (n, in_ch, H, W); one channel is repeated to ``in_ch``."""
    x = torch.from_numpy(np.ascontiguousarray(as_nhwc(images))).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    x = (x - mean_t) / std_t                                   # (n, C, H, W)
    if x.shape[1] == 1 and in_ch > 1:
        x = x.expand(-1, in_ch, -1, -1)                        # grayscale -> in_ch channels (view)
    if x.shape[1] != in_ch:
        raise ValueError(f"images have {x.shape[1]} channels, the backbone expects in_ch={in_ch}")
    return x


def random_crop_pad(x: torch.Tensor, pad: int, fill: torch.Tensor) -> torch.Tensor:
    """Pad ``(C, H, W)`` by ``pad`` px with per-channel ``fill`` (C, 1, 1), then crop back to (H, W)
    at a random offset."""
    if pad == 0:
        return x
    h, w = x.shape[-2:]
    xp = F.pad(x - fill, (pad, pad, pad, pad)) + fill         # (C, H+2p, W+2p)
    i, j = torch.randint(0, 2 * pad + 1, (2,)).tolist()
    return xp[:, i:i + h, j:j + w]


def random_affine(x: torch.Tensor, degrees: float, translate: float, zoom: float, fill: torch.Tensor) -> torch.Tensor:
    """A random rotation (+-degrees), shift (+-translate of the side) and zoom (1 +- zoom) of a square
    ``(C, H, W)`` image, bilinear, with per-channel ``fill`` (C, 1, 1) outside; draws from torch's RNG.

    Plain torch (affine_grid + grid_sample): torchvision's RandomAffine would import torchvision and
    torch._dynamo, ~1.5 s of CPU at every stage start.
    """
    a, dx, dy, s = (torch.rand(4) * 2 - 1).tolist()
    a, s = math.radians(a * degrees), 1.0 + s * zoom
    # theta maps output to input coordinates on the [-1, 1] grid: rotate by -a, divide by the zoom,
    # after undoing the shift (2 * translate: a fraction of the side is twice that on [-1, 1])
    m = torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) / s
    t = torch.tensor([dx, dy]) * 2 * translate
    theta = torch.cat([m, (-m @ t)[:, None]], 1)[None]                   # (1, 2, 3)
    grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)      # (1, H, W, 2)
    out = F.grid_sample((x - fill)[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0] + fill                                                 # (C, H, W)


class ImageArrayDataset(Dataset):
    """Items ``(x (in_ch, H, W) float, y int64)`` from uint8 images; optional random crop with padding
    and random horizontal flip.

    Padding uses each channel's normalised black level, so MNIST digits are padded with background.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, in_ch: int, mean, std, pad: int = 0,
                 flip: bool = False):
        self.x = to_float(images, in_ch, mean, std)
        self.y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} images but {len(self.y)} labels")
        self.pad, self.flip = pad, flip
        black = -torch.tensor(mean, dtype=torch.float32) / torch.tensor(std, dtype=torch.float32)
        self.fill = black.expand(self.x.shape[1]).reshape(-1, 1, 1) if len(mean) == 1 else black.view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        x = self.x[i]
        if self.pad:
            x = random_crop_pad(x, self.pad, self.fill)
        if self.flip and bool(torch.rand(()) < 0.5):
            x = x.flip(-1)                                     # mirror left-right
        return x.contiguous(), self.y[i]
