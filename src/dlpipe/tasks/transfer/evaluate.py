"""Accuracy, confusion matrix and prediction grid per model (stage ``evaluate_vision``).

``evaluate`` reads any ``model.pt`` of :mod:`dlpipe.tasks.transfer.classifier` (head-only, fine-tuned,
from-scratch) and the valid split of the index, and writes ``confusion.png`` + ``predictions.png``.
The summary over all variants is :mod:`dlpipe.tasks.transfer.summary` (no torch: a fast stage).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlpipe.core.runtime import RuntimeParams, set_threads
from dlpipe.plots import confusion, plot_confusion
from dlpipe.tasks.transfer.classifier import load_classifier
from dlpipe.tasks.transfer.params import EvaluateParams
from dlpipe.vision.image_data import load_split, predict_images
from dlpipe.vision.plots import plot_prediction_grid


def grid_picks(y: np.ndarray, pred: np.ndarray, n_show: int, seed: int) -> np.ndarray:
    """Up to half the grid from the mistakes, the rest from the correct ones; seeded, sorted."""
    rng = np.random.default_rng(seed)
    wrong, right = np.flatnonzero(pred != y), np.flatnonzero(pred == y)
    n_wrong = min(len(wrong), n_show // 2)
    n_right = min(len(right), n_show - n_wrong)
    n_wrong = min(len(wrong), n_show - n_right)
    return np.sort(np.concatenate([rng.permutation(wrong)[:n_wrong], rng.permutation(right)[:n_right]]))


def evaluate(*, raw: Path, index_dir: Path, model: Path, out_dir: Path, p: EvaluateParams,
             rt: RuntimeParams, title: str) -> dict:
    """Accuracy, per-class accuracy, confusion-matrix PNG and a sample-prediction grid PNG on the valid split."""
    set_threads(rt.num_threads)
    net, extra = load_classifier(model)
    classes = list(extra["classes"])
    in_ch = int(extra["in_ch"])
    x, y, _ = load_split(raw, index_dir, "valid", extra["image_mode"], extra["size"], classes)
    pred = predict_images(net, x, in_ch, extra["normalize"], p.bs, rt.device).argmax(1).numpy()
    cm = confusion(y, pred, len(classes))
    out_dir = Path(out_dir)
    plot_confusion(cm, classes, out_dir / "confusion.png", title=f"{title}: accuracy {np.mean(pred == y):.4f}")
    pick = grid_picks(y, pred, p.n_show, p.seed)
    plot_prediction_grid([x[i].transpose(2, 0, 1) for i in pick], [classes[pred[i]] for i in pick],
                         [classes[y[i]] for i in pick], out_dir / "predictions.png", title=title)
    per_class = {c: round(float(cm[i, i] / max(cm[i].sum(), 1)), 5) for i, c in enumerate(classes)}
    return {"accuracy": round(float(np.mean(pred == y)), 5), "n_valid": int(len(y)),
            "n_errors": int((pred != y).sum()), "per_class_accuracy": per_class, "kind": extra.get("kind", "")}
