"""Pictures of text models: attention heat maps (target tokens down, source tokens across)."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from dlpipe.plots import plt, save_fig


def plot_attention(items: Sequence[tuple[list[str], list[str], np.ndarray]], dest: str | os.PathLike,
                   cols: int = 2, empty_note: str = "no attention weights") -> None:
    """One panel per ``(source tokens, generated tokens, weights (len(generated), len(source)))``;
    with no items, a picture saying ``empty_note`` (the file always exists: it is a stage output)."""
    n = len(items)
    if n == 0:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, empty_note, ha="center", va="center", fontsize=10)
        save_fig(fig, dest)
        return
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 5.0 * rows), squeeze=False)
    for ax, (src, out, w) in zip(axes.flat, items):
        ax.imshow(w[:, :len(src)], cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(src)), src, rotation=90, fontsize=7)
        ax.set_yticks(range(len(out)), out, fontsize=7)
        ax.set_xlabel("source (fr)", fontsize=8)
        ax.set_ylabel("generated (en)", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("attention weights (greedy decoding, test sentences)", fontsize=10)
    fig.tight_layout()
    save_fig(fig, dest)
