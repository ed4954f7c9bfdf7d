"""Normalise IMDb into no-header ``label,text`` CSVs: a classifier set and a language-model set.

Output (``out_dir``)::

    clas/train.csv  clas/valid.csv  clas/classes.txt    labels = indices into classes.txt
    lm/train.csv    lm/valid.csv                        label 0, a seeded 90/10 split of texts

Two raw layouts are read: fastai's ``imdb_sample`` (``train.csv``, ``valid.csv``, ``classes.txt``)
and the full IMDb folders (``train/{neg,pos}/*.txt``, ``test/{neg,pos}/*.txt``, ``unsup/*.txt`` or
``train/unsup/*.txt``).
The held-out reviews (``valid.csv`` / ``test/``) are the classifier's validation set and,
unless ``include_test_texts``, never enter the LM corpus.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from dlpipe.core.atomic import atomic_dir
from dlpipe.core.errors import DataError
from dlpipe.tasks.ulmfit.params import PrepareParams
from dlpipe.text.labelled import (Row, balanced_subset, read_classes, read_labelled_csv, read_text_folder,
                                  seeded_subset, write_label_csv)


def load_imdb(src: Path) -> tuple[list[str], list[Row], list[Row], list[str]]:
    """(classes, labelled train rows, held-out rows, unlabelled texts) from either raw layout."""
    if (src / "train.csv").is_file():
        classes = read_classes(src / "classes.txt")
        return (classes, read_labelled_csv(src / "train.csv", classes),
                read_labelled_csv(src / "valid.csv", classes), [])
    if (src / "train" / "neg").is_dir():
        classes = ["neg", "pos"]
        train = [(i, t) for i, c in enumerate(classes) for t in read_text_folder(src / "train" / c)]
        test = [(i, t) for i, c in enumerate(classes) for t in read_text_folder(src / "test" / c)]
        # fastai's imdb.tgz has unsup/ at the top; Stanford's aclImdb has train/unsup/
        unsup_dir = next((d for d in (src / "unsup", src / "train" / "unsup") if d.is_dir()), None)
        unsup = read_text_folder(unsup_dir) if unsup_dir else []
        return classes, train, test, unsup
    raise DataError(f"{src}: expected fastai's imdb_sample (train.csv, valid.csv, classes.txt) "
                    f"or the IMDb folders (train/neg, train/pos, test/neg, test/pos)")


def prepare_imdb(*, src: str | os.PathLike, out: str | os.PathLike, p: PrepareParams) -> dict:
    """Raw IMDb -> ``clas/`` and ``lm/`` CSV sets in ``out`` (written atomically).

    Returns:
        metrics: row counts of each output CSV, labelled reviews per class, and the LM sources.
    """
    rng = np.random.default_rng(p.split_seed)
    classes, train, held_out, unsup = load_imdb(Path(src))
    train, held_out = seeded_subset(train, p.max_docs, rng), seeded_subset(held_out, p.max_docs, rng)
    unsup = seeded_subset(unsup, p.max_docs, rng) if p.include_unsup else []
    clas_train = balanced_subset(train, p.n_train, len(classes), rng) if p.n_train else train
    # The LM learns from every review text we may use without labels: all labelled-train texts
    # (also in low-label runs), the unsup reviews, and the held-out ones only if asked to.
    lm_texts = [t for _, t in train] + unsup + ([t for _, t in held_out] if p.include_test_texts else [])
    order = rng.permutation(len(lm_texts))
    n_valid = max(1, round(len(lm_texts) * p.lm_valid_pct))
    with atomic_dir(Path(out)) as tmp:
        (tmp / "clas").mkdir()
        (tmp / "clas" / "classes.txt").write_text("".join(c + "\n" for c in classes), encoding="utf-8")
        m = {"clas_train": write_label_csv(tmp / "clas" / "train.csv", clas_train),
             "clas_valid": write_label_csv(tmp / "clas" / "valid.csv", held_out),
             "lm_train": write_label_csv(tmp / "lm" / "train.csv", ((0, lm_texts[i]) for i in order[n_valid:])),
             "lm_valid": write_label_csv(tmp / "lm" / "valid.csv", ((0, lm_texts[i]) for i in order[:n_valid]))}
    counts = Counter(lab for lab, _ in clas_train)
    m["clas_train_per_class"] = {c: counts.get(i, 0) for i, c in enumerate(classes)}
    m["lm_sources"] = {"train_texts": len(train), "unsup_texts": len(unsup),
                       "held_out_texts": len(held_out) if p.include_test_texts else 0}
    return m
