"""Metric functions ``fn(pred, *yb) -> scalar tensor``; the learner averages them weighted by batch size."""
from __future__ import annotations

import torch


def accuracy(pred: torch.Tensor, target: torch.Tensor, *_) -> torch.Tensor:
    """Fraction of argmax predictions equal to the target; pred (bs, n_classes) or (bs, ..., n_classes)."""
    return (pred.argmax(dim=-1) == target).float().mean()


def error_rate(pred: torch.Tensor, target: torch.Tensor, *_) -> torch.Tensor:
    """1 - accuracy."""
    return 1 - accuracy(pred, target)


def accuracy_thresh(pred: torch.Tensor, target: torch.Tensor, *_, thresh: float = 0.5) -> torch.Tensor:
    """Multi-label accuracy: sigmoid(pred) > thresh compared element-wise with a 0/1 target."""
    return ((pred.sigmoid() > thresh) == target.bool()).float().mean()
