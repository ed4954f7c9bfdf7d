"""Evaluate an IMDb classifier on the evaluation sets (the official-test subset, the imdb_sample
reviews) beside a TF-IDF + logistic-regression baseline trained on the same labels.

``evaluate`` writes ``probs_<set>.npy`` (n, n_classes; float32, corpus order) and ``labels_<set>.npy``
so that :mod:`dlpipe.tasks.ulmfit.ensemble` can average directions without re-running either model.
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


def tfidf_baseline(train_csv: Path, eval_csvs: dict[str, Path], classes: list[str], p: EvalParams,
                   seed: int) -> dict:
    """Word n-gram TF-IDF + logistic regression on the raw texts: accuracy on each evaluation set."""
    y_tr, x_tr = zip(*read_labelled_csv(train_csv, classes))
    vec = TfidfVectorizer(ngram_range=(1, p.tfidf_ngrams), min_df=p.tfidf_min_df, sublinear_tf=True)
    clf = LogisticRegression(C=p.tfidf_C, max_iter=2000, random_state=seed)
    clf.fit(vec.fit_transform(list(x_tr)), np.asarray(y_tr))
    out = {"n_train": len(y_tr), "n_features": len(vec.vocabulary_)}
    for name, csv in eval_csvs.items():
        y, x = zip(*read_labelled_csv(csv, classes))
        out[name] = float((clf.predict(vec.transform(list(x))) == np.asarray(y)).mean())
    return out


def nbsvm_baseline(train_csv: Path, eval_csvs: dict[str, Path], classes: list[str], p: EvalParams) -> dict:
    """NB-SVM (Wang & Manning 2012): binarised uni+bigram counts scaled by the naive-Bayes log-count
    ratio r, a linear SVM on them, weights interpolated with their mean magnitude (beta = 0.25)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.svm import LinearSVC

    y_tr, x_tr = zip(*read_labelled_csv(train_csv, classes))
    y = np.asarray(y_tr)
    if len(classes) != 2 or len(set(y)) != 2:
        return {"n_train": len(y), "skipped": "NB-SVM here is binary; needs both classes"}
    vec = CountVectorizer(ngram_range=(1, p.tfidf_ngrams), min_df=p.tfidf_min_df, binary=True)
    x = vec.fit_transform(list(x_tr))
    pos, neg = (np.asarray(x[y == c].sum(0)).ravel() + 1.0 for c in (1, 0))   # alpha = 1 smoothing
    r = np.log((pos / pos.sum()) / (neg / neg.sum()))
    svm = LinearSVC(C=0.1, max_iter=5000).fit(x.multiply(r).tocsr(), y)
    w = 0.75 * np.abs(svm.coef_).mean() + 0.25 * svm.coef_.ravel()          # (1 - beta) mean|w| + beta w
    out = {"n_train": len(y), "n_features": len(vec.vocabulary_)}
    for name, csv in eval_csvs.items():
        yv, xv = zip(*read_labelled_csv(csv, classes))
        score = vec.transform(list(xv)).multiply(r).tocsr() @ w + svm.intercept_[0]
        out[name] = float(((score > 0).astype(int) == np.asarray(yv)).mean())
    return out


def classification_metrics(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    pred = probs.argmax(1)
    acc = float((pred == labels).mean())
    nll = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    f1 = f1_score(labels, pred, labels=list(range(len(classes))), average=None, zero_division=0)
    return {"accuracy": acc, "error_rate": 1 - acc, "loss": nll, "n": int(len(labels)),
            "std_error": float(np.sqrt(acc * (1 - acc) / max(len(labels), 1))),
            "f1": {c: float(v) for c, v in zip(classes, f1)}}


def evaluate_classifier(*, classifier: Path, data: Path, csvs: Path, out: Path, report_dir: Path, p: EvalParams,
                        rt: RuntimeParams, direction: Direction) -> dict:
    """Per evaluation set (``p.sets``; the first is the headline): accuracy, error rate, its standard
    error, per-class F1, loss, a confusion PNG and the TF-IDF baseline; probs/labels saved."""
    setup(rt)
    t0 = time.time()
    model, _ = load_classifier(classifier)
    names = read_classes(csvs / "classes.txt")
    metrics: dict = {}
    for s in p.sets:
        corpus = load_corpus(data / s)
        probs = predict_probs(model, corpus, p.bs, direction == "bwd", rt.device)
        labels = np.asarray(corpus.labels, dtype=np.int64)
        metrics[s] = classification_metrics(probs, labels, names)
        plot_confusion(confusion(labels, probs.argmax(1), len(names)), names, report_dir / f"confusion_{s}.png",
                       title=f"IMDb classifier ({direction}), {s}: accuracy {metrics[s]['accuracy']:.4f}")
        save_npy(out / f"probs_{s}.npy", probs)
        save_npy(out / f"labels_{s}.npy", labels)
    evals = {s: csvs / f"{s}.csv" for s in p.sets}
    tfidf = tfidf_baseline(csvs / "train.csv", evals, names, p, rt.seed)
    nbsvm = nbsvm_baseline(csvs / "train.csv", evals, names, p)
    head = p.sets[0]
    return {"accuracy": metrics[head]["accuracy"], **metrics, "tfidf_baseline": tfidf, "nbsvm_baseline": nbsvm,
            "beats_baseline": metrics[head]["accuracy"] > tfidf[head], "seconds": round(time.time() - t0, 1)}
