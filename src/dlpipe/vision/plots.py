"""Pictures and small reports for vision evaluation: confusion matrix, prediction grid, NN tables.

All PNGs are written atomically with matplotlib's Agg backend.
"""
from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dlpipe.io.atomic import atomic_path  # noqa: E402


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts; rows are true classes, columns predicted."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    bad = (y_true < 0) | (y_true >= n_classes) | (y_pred < 0) | (y_pred >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"confusion_matrix: row {i}: class ids must be in 0..{n_classes - 1}, "
                         f"got true={y_true[i]} pred={y_pred[i]}")
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes ** 2).reshape(n_classes, n_classes)


def _save(fig, dest: str | os.PathLike) -> None:
    with atomic_path(dest, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})   # no version stamp: stable bytes
    plt.close(fig)


def plot_confusion(cm: np.ndarray, classes: Sequence[str], dest: str | os.PathLike, title: str = "") -> None:
    """Confusion-matrix heat map with the count in each cell."""
    n = len(classes)
    fig, ax = plt.subplots(figsize=(3.0 + 0.6 * n, 2.8 + 0.6 * n))
    ax.imshow(cm, cmap="Blues")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="actual")
    ax.set_title(title, fontsize=9)
    hi = cm.max() if cm.size else 0
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > hi / 2 else "black")
    fig.tight_layout()
    _save(fig, dest)


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
    _save(fig, dest)


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
    _save(fig, dest)


def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
