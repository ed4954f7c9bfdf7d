"""Pictures and tables every task's reports share: confusion matrices, markdown tables, atomic PNGs.

All PNGs are written atomically with matplotlib's Agg backend and no version stamp (stable bytes).
"""
from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from dlpipe.core.atomic import atomic_path  # noqa: E402


def save_fig(fig, dest: str | os.PathLike) -> None:
    """Write ``fig`` to ``dest`` atomically and close it."""
    with atomic_path(dest, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})   # no version stamp: stable bytes
    plt.close(fig)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts, rows = true class, columns = predicted (scikit-learn's, which would
    silently drop ids outside ``0..n_classes-1``: those are an error here)."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    bad = (y_true < 0) | (y_true >= n_classes) | (y_pred < 0) | (y_pred >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"confusion matrix: row {i}: class ids must be in 0..{n_classes - 1}, "
                         f"got true={y_true[i]} pred={y_pred[i]}")
    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


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
    save_fig(fig, dest)


def md_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
