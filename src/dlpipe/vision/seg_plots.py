"""Segmentation pictures: masks in colour beside their images, per-class IoU bars."""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from dlpipe.plots import save_fig


def palette(n_classes: int) -> np.ndarray:
    """(n_classes + 1, 3) uint8 colours: tab20 for the classes, black last (void)."""
    cmap = plt.get_cmap("tab20")
    cols = [cmap(i % 20)[:3] for i in range(n_classes)] + [(0.0, 0.0, 0.0)]
    return (np.array(cols) * 255).round().astype(np.uint8)


def colorize(mask: np.ndarray, n_classes: int, void: int) -> np.ndarray:
    """(H, W) labels -> (H, W, 3) uint8 colours; void (and anything out of range) black."""
    idx = np.where((mask >= 0) & (mask < n_classes) & (mask != void), mask, n_classes)
    return palette(n_classes)[idx]


def plot_mask_rows(images: Sequence[np.ndarray], columns: Mapping[str, Sequence[np.ndarray]], classes: Sequence[str],
                   void: int, dest: str | os.PathLike, title: str = "") -> None:
    """One row per image: the photo, then one coloured mask per column ("truth", each model), a legend."""
    n, names = len(images), list(columns)
    fig, axes = plt.subplots(n, 1 + len(names), figsize=(2.6 * (1 + len(names)), 2.0 * n + 0.9), squeeze=False)
    for r in range(n):
        panels = [images[r]] + [colorize(columns[k][r], len(classes), void) for k in names]
        for c, (ax, img) in enumerate(zip(axes[r], panels)):
            ax.imshow(img)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(["image", *names][c], fontsize=9)
    pal = palette(len(classes)) / 255
    fig.legend(handles=[Patch(color=pal[i], label=c) for i, c in enumerate(classes)] + [Patch(color="k", label="void")],
               loc="lower center", ncol=min(len(classes) + 1, 6), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_fig(fig, dest)


def plot_class_iou(iou: Mapping[str, Sequence[float]], classes: Sequence[str], dest: str | os.PathLike,
                   title: str = "") -> None:
    """Grouped bars: per-class IoU of each model (nan: class absent, drawn as no bar)."""
    names, k = list(iou), len(iou)
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(classes), 3.4))
    for i, name in enumerate(names):
        ax.bar(x + (i - (k - 1) / 2) * 0.8 / k, np.nan_to_num(np.asarray(iou[name], float)), 0.8 / k, label=name)
    ax.set(xticks=x, ylim=(0, 1), ylabel="IoU")
    ax.set_xticklabels(classes, rotation=35, ha="right", fontsize=8)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_fig(fig, dest)
