"""Evaluate an IMDb classifier beside a TF-IDF + logistic-regression baseline; ensemble fwd + bwd.

``evaluate`` writes ``probs.npy`` (n_valid, n_classes; float32, corpus order) and ``labels.npy`` so
that ``ensemble`` can average directions without re-running either model.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score

from dlpipe.errors import DataError
from dlpipe.io.atomic import atomic_path
from dlpipe.runtime import pick_device
from dlpipe.tasks.imdb_clas import EvalParams, load_classifier, predict, save_npy
from dlpipe.tasks.imdb_lm import Direction, RuntimeParams, setup
from dlpipe.text.corpus import load_corpus


def read_label_csv(path: Path) -> tuple[np.ndarray, list[str]]:
    """A no-header ``label,text`` CSV → (labels int64, texts)."""
    try:
        df = pd.read_csv(path, header=None, names=["label", "text"], dtype={"text": str}, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{path}: CSV not found") from None
    if not pd.api.types.is_integer_dtype(df["label"]):
        bad = df.index[pd.to_numeric(df["label"], errors="coerce").isna()][0]
        raise DataError(f"{path}: row {bad + 1}: expected an integer label, got {df['label'][bad]!r}")
    return df["label"].to_numpy(np.int64), df["text"].tolist()


def read_classes(path: Path) -> list[str]:
    classes = [c.strip() for c in Path(path).read_text(encoding="utf-8").splitlines() if c.strip()]
    if not classes:
        raise DataError(f"{path}: expected one class name per line")
    return classes


def tfidf_baseline(train_csv: Path, valid_csv: Path, p: EvalParams, seed: int) -> dict:
    """Word n-gram TF-IDF + logistic regression on the raw texts, same train/valid split."""
    y_tr, x_tr = read_label_csv(train_csv)
    y_va, x_va = read_label_csv(valid_csv)
    vec = TfidfVectorizer(ngram_range=(1, p.tfidf_ngrams), min_df=p.tfidf_min_df, sublinear_tf=True)
    clf = LogisticRegression(C=p.tfidf_C, max_iter=2000, random_state=seed)
    clf.fit(vec.fit_transform(x_tr), y_tr)
    pred = clf.predict(vec.transform(x_va))
    return {"accuracy": float((pred == y_va).mean()), "n_features": len(vec.vocabulary_)}


def classification_metrics(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    pred = probs.argmax(1)
    acc = float((pred == labels).mean())
    nll = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    f1 = f1_score(labels, pred, labels=list(range(len(classes))), average=None, zero_division=0)
    return {"accuracy": acc, "error_rate": 1 - acc, "loss": nll,
            "f1": {c: float(v) for c, v in zip(classes, f1)}}


def plot_confusion(path: Path, labels: np.ndarray, pred: np.ndarray, classes: list[str], title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = confusion_matrix(labels, pred, labels=list(range(len(classes))))
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2.5, 1.2 * len(classes) + 2))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="actual", title=title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def evaluate_classifier(clas_path: Path, data_dir: Path, train_csv: Path, valid_csv: Path, classes_path: Path,
                        out_dir: Path, report_dir: Path, p: EvalParams, rt: RuntimeParams,
                        direction: Direction) -> dict:
    """Accuracy, error rate, per-class F1, loss, confusion PNG, TF-IDF baseline; saves probs/labels."""
    setup(rt)
    t0 = time.time()
    model, _ = load_classifier(clas_path)
    valid = load_corpus(data_dir / "valid")
    classes = read_classes(classes_path)
    probs = predict(model, valid, p.bs, direction == "bwd", pick_device(rt.device))
    labels = np.asarray(valid.labels, dtype=np.int64)
    metrics = classification_metrics(probs, labels, classes)
    metrics["tfidf_baseline"] = tfidf_baseline(train_csv, valid_csv, p, rt.seed)
    metrics["beats_baseline"] = metrics["accuracy"] > metrics["tfidf_baseline"]["accuracy"]
    metrics["n_valid"], metrics["seconds"] = len(labels), round(time.time() - t0, 1)
    plot_confusion(report_dir / "confusion.png", labels, probs.argmax(1), classes, f"IMDb classifier ({direction})")
    save_npy(out_dir / "probs.npy", probs)
    save_npy(out_dir / "labels.npy", labels)
    return metrics


def ensemble(fwd_dir: Path, bwd_dir: Path) -> dict:
    """Average forward and backward probabilities (ULMFiT's fwd+bwd ensemble)."""
    fwd, bwd = np.load(fwd_dir / "probs.npy"), np.load(bwd_dir / "probs.npy")
    y_f, y_b = np.load(fwd_dir / "labels.npy"), np.load(bwd_dir / "labels.npy")
    if fwd.shape != bwd.shape or not np.array_equal(y_f, y_b):
        raise DataError(f"{fwd_dir} and {bwd_dir}: predictions are not for the same validation set "
                        f"(shapes {fwd.shape} vs {bwd.shape})")
    acc = lambda probs: float((probs.argmax(1) == y_f).mean())  # noqa: E731
    return {"fwd_accuracy": acc(fwd), "bwd_accuracy": acc(bwd), "ensemble_accuracy": acc((fwd + bwd) / 2),
            "n_valid": len(y_f)}
