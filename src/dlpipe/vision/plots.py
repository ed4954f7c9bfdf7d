"""Image grids for vision reports: predictions (mistakes in red), and rows of images per query.

Confusion matrices and tables are in :mod:`dlpipe.plots`.
"""
from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dlpipe.plots import save_fig  # noqa: E402


def _show_image(ax, img: np.ndarray) -> None:
    """Show a (C, H, W) or (H, W) image in [0, 1] (normalised images are min-max rescaled)."""
    img = np.asarray(img, np.float32)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([]), ax.set_yticks([])


def plot_prediction_grid(images: Sequence[np.ndarray], pred: Sequence[str], true: Sequence[str],
                         dest: str | os.PathLike, ncols: int = 6, title: str = "") -> None:
    """Grid of images titled 'pred / true'; mistakes get a red title and frame."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.7 * ncols, 2.1 * nrows + 0.4), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, p, t in zip(axes.flat, images, pred, true):
        ax.axis("on")
        _show_image(ax, img)
        wrong = p != t
        ax.set_title(f"{p} / {t}", fontsize=8, color="red" if wrong else "black")
        for spine in ax.spines.values():
            spine.set(color="red" if wrong else "0.7", linewidth=3 if wrong else 0.5)
    if title:
        fig.suptitle(f"{title}  (predicted / true; red = mistake)", fontsize=9)
    save_fig(fig, dest)


def plot_image_rows(rows: Sequence[tuple[str, Sequence[np.ndarray], Sequence[str]]],
                    dest: str | os.PathLike, title: str = "") -> None:
    """One row per query: its label on the left, then images with captions (text -> image search)."""
    ncols = max((len(imgs) for _, imgs, _ in rows), default=1)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.8 * ncols + 1, 1.9 * len(rows)), squeeze=False)
    for r, (label, imgs, caps) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(imgs):
                ax.axis("on")
                _show_image(ax, imgs[c])
                ax.set_title(caps[c], fontsize=7)
        axes[r, 0].set_ylabel(label, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_fig(fig, dest)
