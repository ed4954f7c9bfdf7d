"""Evaluate an IMDb classifier beside a TF-IDF + logistic-regression baseline.

``evaluate`` writes ``probs.npy`` (n_valid, n_classes; float32, corpus order) and ``labels.npy`` so
that :mod:`dlpipe.tasks.ulmfit.ensemble` can average directions without re-running either model.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.runtime import apply as setup
from dlpipe.io.arrays import save_npy
from dlpipe.plots import confusion, plot_confusion
from dlpipe.tasks.ulmfit.classifier import load_classifier, predict_probs
from dlpipe.tasks.ulmfit.params import Direction, EvalParams
from dlpipe.text.corpus import load_corpus
from dlpipe.text.labelled import read_classes, read_labelled_csv


def tfidf_baseline(train_csv: Path, valid_csv: Path, classes: list[str], p: EvalParams, seed: int) -> dict:
    """Word n-gram TF-IDF + logistic regression on the raw texts, same train/valid split."""
    (y_tr, x_tr), (y_va, x_va) = (zip(*read_labelled_csv(f, classes)) for f in (train_csv, valid_csv))
    vec = TfidfVectorizer(ngram_range=(1, p.tfidf_ngrams), min_df=p.tfidf_min_df, sublinear_tf=True)
    clf = LogisticRegression(C=p.tfidf_C, max_iter=2000, random_state=seed)
    clf.fit(vec.fit_transform(list(x_tr)), np.asarray(y_tr))
    pred = clf.predict(vec.transform(list(x_va)))
    return {"accuracy": float((pred == np.asarray(y_va)).mean()), "n_features": len(vec.vocabulary_)}


def classification_metrics(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    pred = probs.argmax(1)
    acc = float((pred == labels).mean())
    nll = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    f1 = f1_score(labels, pred, labels=list(range(len(classes))), average=None, zero_division=0)
    return {"accuracy": acc, "error_rate": 1 - acc, "loss": nll,
            "f1": {c: float(v) for c, v in zip(classes, f1)}}


def evaluate_classifier(*, classifier: Path, data: Path, train_csv: Path, valid_csv: Path, classes: Path,
                        out: Path, report_dir: Path, p: EvalParams, rt: RuntimeParams, direction: Direction) -> dict:
    """Accuracy, error rate, per-class F1, loss, confusion PNG, TF-IDF baseline; saves probs/labels."""
    setup(rt)
    t0 = time.time()
    model, _ = load_classifier(classifier)
    valid = load_corpus(data / "valid")
    names = read_classes(classes)
    probs = predict_probs(model, valid, p.bs, direction == "bwd", rt.device)
    labels = np.asarray(valid.labels, dtype=np.int64)
    metrics = classification_metrics(probs, labels, names)
    metrics["tfidf_baseline"] = tfidf_baseline(train_csv, valid_csv, names, p, rt.seed)
    metrics["beats_baseline"] = metrics["accuracy"] > metrics["tfidf_baseline"]["accuracy"]
    metrics["n_valid"], metrics["seconds"] = len(labels), round(time.time() - t0, 1)
    plot_confusion(confusion(labels, probs.argmax(1), len(names)), names, report_dir / "confusion.png",
                   title=f"IMDb classifier ({direction}): accuracy {metrics['accuracy']:.4f}")
    save_npy(out / "probs.npy", probs)
    save_npy(out / "labels.npy", labels)
    return metrics
