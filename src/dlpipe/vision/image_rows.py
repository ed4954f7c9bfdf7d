"""Side-by-side pictures of uint8 images as they are (no rescaling): super-resolution crops, style
transfer results — rows of panels with a caption each."""
from __future__ import annotations

import os
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from dlpipe.plots import save_fig


def plot_panels(rows: Sequence[Sequence[tuple[str, np.ndarray]]], dest: str | os.PathLike, title: str = "",
                panel: float = 2.4) -> None:
    """One row per entry of ``rows``: (caption, uint8 (H, W, 3) image) panels, shown pixel for pixel
    (nearest-neighbour, so a 4x upscale's blur or texture is what one sees)."""
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(panel * ncols, panel * len(rows) + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, row in enumerate(rows):
        for c, (cap, img) in enumerate(row):
            axes[r, c].imshow(img, interpolation="nearest")
            axes[r, c].set_title(cap, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()) if title else None)   # room for the title
    save_fig(fig, dest)
