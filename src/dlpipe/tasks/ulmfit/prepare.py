"""The IMDb sets: the full aclImdb reviews (read from the archive) split into what each model learns
from and what it is judged on, as no-header ``label,text`` CSVs (``clas/classes.txt``: neg, pos)::

    clas/train.csv      class-balanced labelled reviews of aclImdb train (n_train)     classifier, TF-IDF
    clas/valid.csv      other aclImdb train reviews (n_valid): training-time validation only
    clas/curve-<n>.csv  nested class-balanced subsets of the classifier's pool: the label-efficiency curve
    clas/test.csv       a seeded, class-balanced subset of the official test split (n_test): the headline
    clas/sample.csv     fastai's imdb_sample validation reviews (200), the earlier yardstick
    lm/train.csv lm/valid.csv   unlabelled + labelled train texts, capped by words: LM fine-tuning

No test-split text is ever trained on, and every set a model learns from drops each text equal
(after whitespace normalisation) to an evaluation text; the counts dropped are in the metrics.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from dlpipe.core.atomic import atomic_dir, write_text
from dlpipe.core.errors import DataError
from dlpipe.tasks.ulmfit.params import PrepareParams
from dlpipe.text.corpora import read_aclimdb
from dlpipe.text.labelled import (Row, drop_equal, normalize_space, read_classes, read_labelled_csv, seeded_subset,
                                  write_label_csv)

CLASSES = ["neg", "pos"]    # aclImdb's folders; the same order as imdb_sample's negative, positive


def balanced_order(rows: list[Row], rng: np.random.Generator) -> list[Row]:
    """``rows`` shuffled per class and interleaved (neg, pos, neg, ...): every even prefix is balanced,
    so prefixes give nested label budgets."""
    per = [[rows[i] for i in rng.permutation(len(rows)) if rows[i][0] == c] for c in range(len(CLASSES))]
    out = []
    for k in range(max(map(len, per))):
        out += [p[k] for p in per if k < len(p)]
    return out


def take(rows: list[Row], n: int | None, what: str) -> list[Row]:
    if n is not None and n > len(rows):
        raise DataError(f"imdb.prepare: {what} asks for {n} reviews, only {len(rows)} are available")
    return rows if n is None else rows[:n]


def cap_words(texts: list[str], max_words: int | None, rng: np.random.Generator) -> list[str]:
    """A seeded subset of whole texts holding about ``max_words`` whitespace words (order kept)."""
    if max_words is None:
        return texts
    perm = rng.permutation(len(texts))
    n = int(np.searchsorted(np.cumsum([len(texts[i].split()) for i in perm]), max_words)) + 1
    return [texts[i] for i in np.sort(perm[:n])]


def sample_eval(sample: Path) -> list[Row]:
    """imdb_sample's validation reviews, labels mapped onto CLASSES (its classes.txt order is the same)."""
    names = read_classes(sample / "classes.txt")
    if len(names) != len(CLASSES):
        raise DataError(f"{sample / 'classes.txt'}: expected {len(CLASSES)} classes, got {names}")
    return read_labelled_csv(sample / "valid.csv", names)


def prepare_imdb(*, acl: str | os.PathLike, sample: str | os.PathLike, out: str | os.PathLike,
                 p: PrepareParams) -> dict:
    """aclImdb (archive) + imdb_sample -> the CSV sets above in ``out`` (written atomically)."""
    rng = np.random.default_rng(p.split_seed)
    reviews = read_aclimdb(Path(acl))
    by = {k: [(CLASSES.index(r.label) if r.label in CLASSES else 0, r.text) for r in reviews if (r.split, r.label) == k]
          for k in [("train", "pos"), ("train", "neg"), ("train", "unsup"), ("test", "pos"), ("test", "neg")]}
    by = {k: seeded_subset(v, p.max_docs, rng) for k, v in by.items()}
    test = take(balanced_order(by["test", "neg"] + by["test", "pos"], rng), p.n_test, "n_test")
    evals = {"test": test, "sample": sample_eval(Path(sample))}
    banned = {normalize_space(t) for rows in evals.values() for _, t in rows}
    dropped = Counter()
    pool, dropped["clas_pool"] = drop_equal(by["train", "neg"] + by["train", "pos"], banned)
    pool = balanced_order(pool, rng)                      # after the drop, so every budget stays balanced
    valid, pool = take(pool, p.n_valid, "n_valid"), pool[p.n_valid:]
    clas = take(pool, p.n_train, "n_train")
    curve = {n: take(pool, n, f"curve {n}") for n in p.curve}
    lm_texts = [t for _, t in by["train", "neg"] + by["train", "pos"]] + (
        [t for _, t in by["train", "unsup"]] if p.include_unsup else [])
    lm_rows, dropped["lm"] = drop_equal([(0, t) for t in cap_words(lm_texts, p.lm_max_words, rng)], banned)
    order = rng.permutation(len(lm_rows))
    n_lm_valid = max(1, round(len(lm_rows) * p.lm_valid_pct))
    sets = {"clas/train": clas, "clas/valid": valid, **{f"clas/curve-{n}": rows for n, rows in curve.items()},
            "clas/test": evals["test"], "clas/sample": evals["sample"],
            "lm/train": [lm_rows[i] for i in order[n_lm_valid:]], "lm/valid": [lm_rows[i] for i in order[:n_lm_valid]]}
    with atomic_dir(Path(out)) as tmp:
        counts = {name: write_label_csv(tmp / f"{name}.csv", rows) for name, rows in sets.items()}
        write_text(tmp / "clas" / "classes.txt", "".join(c + "\n" for c in CLASSES))
    return {"rows": counts, "per_class": {name: dict(sorted(Counter(CLASSES[lab] for lab, _ in rows).items()))
                                          for name, rows in sets.items() if not name.startswith("lm/")},
            "lm_words": sum(len(t.split()) for _, t in lm_rows), "eval_texts": len(banned),
            "dropped_equal_to_eval": dict(dropped)}
