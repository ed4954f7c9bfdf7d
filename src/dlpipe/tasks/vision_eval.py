"""Vision task, evaluation: accuracy, confusion matrix and prediction grid per model; the transfer summary.

``evaluate`` reads any ``model.pt`` from :mod:`dlpipe.tasks.vision_heads` (head-only, fine-tuned,
from-scratch) and the valid split of the index, and writes ``confusion.png`` + ``predictions.png``.
``transfer_summary`` gathers every variant's accuracy and the epoch times of head training vs
fine-tuning (the reason precompute exists) into one metrics file.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlpipe.errors import DataError
from dlpipe.tasks.vision_data import RuntimeParams
from dlpipe.tasks.vision_heads import load_classifier
from dlpipe.runtime import set_threads
from dlpipe.vision.image_data import load_split, predict
from dlpipe.vision.plots import confusion_matrix, plot_confusion, plot_prediction_grid


@dataclass(frozen=True)
class EvaluateParams:
    bs: int = field(metadata=dict(ge=1))
    n_show: int = field(metadata=dict(ge=1))          # images in the prediction grid
    seed: int                                         # which images the grid shows


def grid_picks(y: np.ndarray, pred: np.ndarray, n_show: int, seed: int) -> np.ndarray:
    """Up to half the grid from the mistakes, the rest from the correct ones; seeded, sorted."""
    rng = np.random.default_rng(seed)
    wrong, right = np.flatnonzero(pred != y), np.flatnonzero(pred == y)
    n_wrong = min(len(wrong), n_show // 2)
    n_right = min(len(right), n_show - n_wrong)
    n_wrong = min(len(wrong), n_show - n_right)
    return np.sort(np.concatenate([rng.permutation(wrong)[:n_wrong], rng.permutation(right)[:n_right]]))


def evaluate(raw: Path, index_dir: Path, model_path: Path, out_dir: Path, p: EvaluateParams,
             rt: RuntimeParams, title: str) -> dict:
    """Accuracy, per-class accuracy, confusion-matrix PNG and a sample-prediction grid PNG on the valid split."""
    set_threads(rt.num_threads)
    model, extra = load_classifier(model_path)
    classes = list(extra["classes"])
    in_ch = int(extra["in_ch"])
    x, y, _ = load_split(raw, index_dir, "valid", extra["image_mode"], extra["size"], classes)
    pred = predict(model, x, in_ch, extra["normalize"], p.bs).argmax(1).numpy()
    cm = confusion_matrix(y, pred, len(classes))
    out_dir = Path(out_dir)
    plot_confusion(cm, classes, out_dir / "confusion.png", title=f"{title}: accuracy {np.mean(pred == y):.4f}")
    pick = grid_picks(y, pred, p.n_show, p.seed)
    plot_prediction_grid([x[i].transpose(2, 0, 1) for i in pick], [classes[pred[i]] for i in pick],
                         [classes[y[i]] for i in pick], out_dir / "predictions.png", title=title)
    per_class = {c: round(float(cm[i, i] / max(cm[i].sum(), 1)), 5) for i, c in enumerate(classes)}
    return {"accuracy": round(float(np.mean(pred == y)), 5), "n_valid": int(len(y)),
            "n_errors": int((pred != y).sum()), "per_class_accuracy": per_class, "kind": extra.get("kind", "")}


def _read_metrics(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: metrics file not found: run the stage that writes it") from None


def transfer_summary(evals: dict[str, Path], trains: dict[str, Path]) -> dict:
    """One metrics dict: accuracy of each variant and training epoch times.

    Args:
        evals: variant name (``head_full``, ``finetune_low``...) -> its evaluate metrics.json.
        trains: variant name -> its training metrics.json (with ``epoch_seconds`` and ``n_train``).
    """
    acc = {name: _read_metrics(path)["accuracy"] for name, path in sorted(evals.items())}
    tm = {name: _read_metrics(path) for name, path in sorted(trains.items())}
    secs = {name: m["epoch_seconds"] for name, m in tm.items()}
    out = {"accuracy": acc, "epoch_seconds": secs, "n_train": {name: m["n_train"] for name, m in tm.items()}}
    head, fine = secs.get("head_full"), secs.get("finetune_full")
    if head and fine and not math.isnan(head) and head > 0:
        out["finetune_over_head_epoch_time"] = round(fine / head, 1)   # how much faster precomputed features train
    for labels in ("full", "low"):
        f, s = acc.get(f"finetune_{labels}"), acc.get(f"scratch_{labels}")
        if f is not None and s is not None:
            out[f"pretrained_minus_scratch_{labels}"] = round(f - s, 5)
    return out
