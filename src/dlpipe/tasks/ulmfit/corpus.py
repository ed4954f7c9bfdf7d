"""The pretraining corpus: WikiText articles (+ optional other English text) as ``label,text`` CSVs.

Output (``out``): ``train.csv`` and ``valid.csv``, label 0, one article/document per row, so
the same tokenize stage applies. ``valid`` is a seeded set of whole articles from one WikiText
file (WikiText-2's test split at sample scale, WikiText-103's valid split at full scale); those
articles never enter ``train``. No IMDb text is used here at all.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlpipe.core.atomic import atomic_dir
from dlpipe.tasks.ulmfit.params import LMCorpusParams
from dlpipe.text.corpora import read_captions, read_shakespeare, read_wikitext
from dlpipe.text.labelled import seeded_subset, write_label_csv


def prepare_lm_corpus(*, wikitext: str | os.PathLike, out: str | os.PathLike, p: LMCorpusParams,
                      shakespeare: str | os.PathLike | None = None,
                      multi30k: str | os.PathLike | None = None) -> dict:
    """Build ``train.csv``/``valid.csv`` of the pretraining corpus in ``out`` (atomically).

    Returns:
        metrics: documents and characters per source and split.
    """
    wt, rng = Path(wikitext), np.random.default_rng(p.split_seed)
    pool = read_wikitext(wt / p.heldout_from)
    n_held = len(pool) if p.n_heldout_articles is None else min(p.n_heldout_articles, len(pool) - 1)
    held = set(rng.choice(len(pool), size=n_held, replace=False).tolist())
    valid = seeded_subset([a for i, a in enumerate(pool) if i in held], p.max_docs, rng)
    sources: dict[str, list[str]] = {}
    for name in p.wikitext_train:
        arts = pool if name == p.heldout_from else read_wikitext(wt / name)
        if name == p.heldout_from:
            arts = [a for i, a in enumerate(arts) if i not in held]
        sources[name] = seeded_subset(arts, p.max_docs, rng)
    if p.shakespeare:
        if shakespeare is None:
            raise ValueError("shakespeare: true in params but no --shakespeare file given")
        sources["tinyshakespeare"] = seeded_subset(read_shakespeare(Path(shakespeare)), p.max_docs, rng)
    for name in p.multi30k_files:
        if multi30k is None:
            raise ValueError("multi30k_files set in params but no --multi30k directory given")
        sources[f"multi30k/{name}"] = seeded_subset(read_captions(Path(multi30k) / name), p.max_docs, rng)
    train = [t for docs in sources.values() for t in docs]
    with atomic_dir(out) as tmp:
        write_label_csv(tmp / "train.csv", ((0, t) for t in train))
        write_label_csv(tmp / "valid.csv", ((0, t) for t in valid))
    m = {f"train/{k}": {"docs": len(v), "chars": sum(map(len, v))} for k, v in sources.items()}
    m["train"] = {"docs": len(train), "chars": sum(map(len, train))}
    m["valid"] = {"docs": len(valid), "chars": sum(map(len, valid))}
    return m
