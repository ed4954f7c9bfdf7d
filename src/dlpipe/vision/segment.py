"""Segmentation losses and metrics, void-aware.

Logits are (bs, n_classes, H, W), targets (bs, H, W) int64 with a void value (>= n_classes) where
unlabelled: void pixels count in no loss and no metric. IoU and Dice come from a confusion matrix
(rows = truth, columns = prediction), the same definitions torchmetrics' ``MulticlassJaccardIndex``
and ``MulticlassF1Score`` use with ``ignore_index`` = void (a test cross-checks them)::

    IoU_c  = cm[c, c] / (row_c + col_c - cm[c, c])      Dice_c = 2 cm[c, c] / (row_c + col_c)
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F


def median_freq_weights(masks: np.ndarray, n_classes: int) -> np.ndarray:
    """SegNet's median frequency balancing: w_c = median(f) / f_c, with f_c = pixels of class c over the
    pixels of the images where c appears; a class absent from every mask gets weight 0."""
    counts = np.zeros(n_classes)
    present_px = np.zeros(n_classes)
    for m in masks:
        c = np.bincount(m.reshape(-1), minlength=256)[:n_classes]
        counts += c
        present_px += (c > 0) * m.size
    freq = np.divide(counts, present_px, out=np.zeros(n_classes), where=present_px > 0)
    med = np.median(freq[freq > 0]) if (freq > 0).any() else 1.0
    return np.divide(med, freq, out=np.zeros(n_classes), where=freq > 0)


def soft_dice_loss(logits: torch.Tensor, y: torch.Tensor, void: int, eps: float = 1.0) -> torch.Tensor:
    """1 - mean over classes of the soft Dice of softmax(logits) against one-hot(y), void pixels masked."""
    n = logits.shape[1]
    keep = (y != void).unsqueeze(1)                                   # (bs, 1, H, W)
    p = logits.float().softmax(1) * keep
    t = F.one_hot(torch.where(y == void, 0, y), n).permute(0, 3, 1, 2) * keep    # (bs, n, H, W)
    inter, total = (p * t).sum((0, 2, 3)), (p + t).sum((0, 2, 3))
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


def seg_loss(kind: str, void: int, weight: Sequence[float] | None = None) -> Callable:
    """The training loss: "ce" (weighted by ``weight`` if given), "dice" or "ce+dice"."""
    w = torch.tensor(weight, dtype=torch.float32) if weight is not None else None

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = logits.new_zeros(())
        if "ce" in kind:
            out = out + F.cross_entropy(logits, y, weight=None if w is None else w.to(logits.device), ignore_index=void)
        if "dice" in kind:
            out = out + soft_dice_loss(logits, y, void)
        return out

    loss.__name__ = f"seg_{kind}"
    return loss


def pixel_accuracy_metric(void: int) -> Callable:
    """Learner metric: share of non-void pixels predicted right."""
    def pixel_accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        keep = y != void
        return (logits.argmax(1)[keep] == y[keep]).float().mean()
    return pixel_accuracy


def scores_from_confusion(cm: np.ndarray) -> dict:
    """Pixel accuracy, per-class IoU and Dice (nan for a class neither true nor predicted), their means."""
    cm = np.asarray(cm, dtype=np.float64)
    tp, rows, cols = np.diag(cm), cm.sum(1), cm.sum(0)
    union = rows + cols - tp
    iou = np.divide(tp, union, out=np.full(len(tp), np.nan), where=union > 0)
    dice = np.divide(2 * tp, rows + cols, out=np.full(len(tp), np.nan), where=(rows + cols) > 0)
    return {"pixel_accuracy": float(tp.sum() / max(cm.sum(), 1)), "iou": iou, "dice": dice,
            "miou": float(np.nanmean(iou)), "mean_dice": float(np.nanmean(dice))}
