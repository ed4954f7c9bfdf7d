"""The label-efficiency curve (ULMFiT's Figure 3): forward classifiers on nested, class-balanced
label budgets, each beside the same classifier on a random encoder (no pretraining, no LM
fine-tuning) and beside TF-IDF + logistic regression on the same labels, all scored on the same
official-test reviews.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Literal

import numpy as np

from dlpipe.core.atomic import write_text
from dlpipe.core.errors import DataError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.plots import md_table, save_fig
from dlpipe.tasks.ulmfit.classifier import load_classifier, predict_probs, train_classifier
from dlpipe.tasks.ulmfit.evaluate import tfidf_baseline
from dlpipe.tasks.ulmfit.params import ClassifierParams, CurveParams, EvalParams, ModelParams, PrepareParams
from dlpipe.text.corpus import load_corpus
from dlpipe.text.labelled import read_classes

Init = Literal["ulmfit", "random"]
INITS = ("ulmfit", "random")


def curve_point(*, pre: Path, ft: Path, itos: Path, data: Path, csvs: Path, out: Path, n: int, init: Init,
                m: ModelParams, p: ClassifierParams, c: CurveParams, e: EvalParams, rt: RuntimeParams,
                dirs: RunDirs) -> dict:
    """Train on ``data/curve-<n>`` from the fine-tuned LM (``ulmfit``) or a random encoder, score it on
    ``data/<e.sets[0]>``; TF-IDF on the same labels beside it."""
    pc = dataclasses.replace(p, pretrained=init == "ulmfit", finetune=True, epochs=list(c.epochs), bs=c.bs)
    trained = train_classifier(pre=pre, ft=ft, itos=itos, data=data, out=out, m=m, p=pc, rt=rt, direction="fwd",
                               dirs=dirs, train_split=f"curve-{n}")
    head = e.sets[0]
    model, _ = load_classifier(out / "classifier.pt")
    corpus = load_corpus(data / head)
    acc = float((predict_probs(model, corpus, e.bs, False, rt.device).argmax(1) == corpus.labels).mean())
    tfidf = tfidf_baseline(csvs / f"curve-{n}.csv", {head: csvs / f"{head}.csv"}, read_classes(csvs / "classes.txt"),
                           e, rt.seed)
    return {"n_labels": n, "init": init, "eval_set": head, "accuracy": acc, "tfidf_accuracy": tfidf[head],
            "n_eval": len(corpus), "train_seconds": trained["seconds"]}


def label_curve(*, points: Path, png: Path, table: Path, p: PrepareParams) -> dict:
    """The curve points' metrics (``points/<n>-<init>/metrics.json`` for each budget ``n`` of
    ``imdb.prepare.curve`` and init ulmfit/random; other folders there, say from another scale, are
    ignored) -> {n: {ulmfit, random, tfidf}}, a PNG of accuracy vs labels and a Markdown table."""
    files = [Path(points) / f"{n}-{init}" / "metrics.json" for n in p.curve for init in INITS]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: curve point missing ({len(missing)} of {len(files)}; "
                        f"imdb.prepare.curve = {p.curve}, inits {list(INITS)})")
    rows: dict[int, dict] = {}
    for f in files:
        try:
            m = json.loads(Path(f).read_text())
        except (OSError, ValueError) as err:
            raise DataError(f"{f}: not a curve point's metrics ({err})") from None
        r = rows.setdefault(int(m["n_labels"]), {})
        r[m["init"]] = m["accuracy"]
        r["tfidf"] = m["tfidf_accuracy"]
    ns = sorted(rows)
    _plot(png, ns, rows)
    write_text(table, "# Label efficiency (forward classifier, official-test reviews)\n\n" + md_table(
        ["labels", "ULMFiT", "no pretraining", "TF-IDF + LR", "ULMFiT - TF-IDF"],
        [(n, *(f"{rows[n].get(k, float('nan')):.4f}" for k in ("ulmfit", "random", "tfidf")),
          f"{rows[n].get('ulmfit', np.nan) - rows[n]['tfidf']:+.4f}") for n in ns]))
    return {str(n): rows[n] for n in ns}


def _plot(path: Path, ns: list[int], rows: dict) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label, style in (("ulmfit", "ULMFiT (pretrained + fine-tuned LM)", "o-"),
                              ("random", "same classifier, random encoder", "s--"), ("tfidf", "TF-IDF + LR", "^:")):
        ys = [rows[n].get(key, np.nan) for n in ns]
        ax.plot(ns, ys, style, label=label)
    ax.set(xscale="log", xlabel="labelled training reviews", ylabel="test accuracy",
           title="IMDb label efficiency (ULMFiT Fig. 3)", xticks=ns, xticklabels=[str(n) for n in ns])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_fig(fig, path)
