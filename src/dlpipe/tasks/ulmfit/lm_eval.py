"""Perplexity of both language models of a direction (pretrained, fine-tuned) on held-out general
English (per source: WikiText articles, Gutenberg books) and on held-out IMDb reviews.

Each held-out set is a token store, numericalized here with each LM's own vocabulary (words it does
not know become xxunk, so the unk rate is reported beside each perplexity: a perplexity is only
comparable at a similar unk rate).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.runtime import apply as setup
from dlpipe.core.stage import RunDirs
from dlpipe.tasks.ulmfit.corpus import BOOKS, WIKI
from dlpipe.tasks.ulmfit.lm import load_lm
from dlpipe.tasks.ulmfit.params import Direction, LMEvalParams
from dlpipe.text.callbacks import RNNCallback, lm_loss
from dlpipe.text.corpus import Corpus, iter_token_docs, load_token_meta
from dlpipe.text.lm_data import LMLoader
from dlpipe.text.vocab import Vocab
from dlpipe.train import accuracy, make_learner

SOURCES = {WIKI: "wikitext", BOOKS: "books"}


def numericalized(tok_dir: Path, itos: list[str]) -> Corpus:
    """A token store as an in-memory id corpus in ``itos``'s vocabulary."""
    vocab, (_, labels) = Vocab(itos, str(tok_dir)), load_token_meta(tok_dir)
    docs = [vocab.numericalize(t) for t in iter_token_docs(tok_dir)]
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    return Corpus(np.concatenate(docs).astype(np.int32), offsets, labels, Path(tok_dir))


def perplexity(learn, corpus: Corpus, p: LMEvalParams, backwards: bool, seed: int) -> dict:
    """Loss, perplexity, next-token accuracy and unk rate of the learner's LM on ``corpus``."""
    m = learn.validate(LMLoader(corpus, p.bs, p.bptt, seed, backwards=backwards, random_bptt=False))
    unk = float(np.count_nonzero(corpus.ids == 0) / max(corpus.n_tokens, 1))
    return {"loss": round(m["valid_loss"], 4), "perplexity": round(math.exp(min(m["valid_loss"], 50.0)), 2),
            "accuracy": round(m["accuracy"], 4), "unk_rate": round(unk, 4), "tokens": corpus.n_tokens}


def evaluate_lm(*, lms: list, general: Path, reviews: Path, p: LMEvalParams, rt: RuntimeParams,
                direction: Direction) -> dict:
    """``lms``: (name, LM directory) pairs; ``general``: the pretraining corpus's held-out token store
    (labels = source); ``reviews``: the IMDb LM held-out token store."""
    setup(rt)
    out = {}
    for name, lm_dir in lms:
        model, itos, _ = load_lm(Path(lm_dir))
        learn = make_learner(model, None, None, lm_loss, rt=rt, dirs=RunDirs(), fingerprint="",
                             metrics=[accuracy], cbs=[RNNCallback()])
        gen = numericalized(Path(general), itos)
        res = {SOURCES[int(src)]: perplexity(learn, gen.subset(np.flatnonzero(gen.labels == src)), p,
                                             direction == "bwd", rt.seed)
               for src in np.unique(gen.labels)}
        res["imdb"] = perplexity(learn, numericalized(Path(reviews), itos), p, direction == "bwd", rt.seed)
        out[name] = res
    return out
