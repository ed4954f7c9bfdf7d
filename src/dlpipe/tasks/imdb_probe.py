"""Linear probe of a language model's encoder: how much sentiment its frozen features already carry.

The classifier's head reads the concat-pooled last-layer features (``masked_concat_pool``). A
cross-validated logistic regression on exactly those features, with the encoder frozen, measures what
the LM contributes on its own, with far less seed noise than a classifier fine-tuned on a few hundred
reviews. Used to ask whether a better LM (lower perplexity) makes better classifier features:

    dlpipe probe data/models/imdb/finetune_lm --direction fwd

The probe's model selection uses only the training reviews (``cv_accuracy``); ``valid_accuracy`` is
reported beside it and never used to choose anything.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlpipe.errors import DataError
from dlpipe.io.checkpoint import load_model
from dlpipe.models.awd_lstm import AWDLSTMConfig, AWDLSTMEncoder
from dlpipe.models.text_classifier import MultiBatchEncoder, masked_concat_pool
from dlpipe.tasks.imdb_lm import Direction, read_itos
from dlpipe.text.corpus import Corpus, load_corpus
from dlpipe.text.samplers import ClassifierDataset, SortSampler, pad_collate

C_GRID = np.logspace(-4, 1, 11)   # inverse L2 strengths tried by the cross-validation


def load_encoder(lm_dir: Path, bptt: int) -> MultiBatchEncoder:
    """The ``encoder.pt`` of an LM directory, wrapped to read whole documents ``bptt`` at a time."""
    blob = load_model(Path(lm_dir) / "encoder.pt")
    enc = AWDLSTMEncoder(AWDLSTMConfig(**blob["config"]))
    load_model(Path(lm_dir) / "encoder.pt", enc)
    return MultiBatchEncoder(enc, bptt, max_len=bptt).eval()


@torch.no_grad()
def encoder_features(enc: MultiBatchEncoder, corpus: Corpus, backwards: bool, bs: int = 64) -> np.ndarray:
    """Concat-pooled features (n_docs, 3·emb) in corpus order, read exactly as the classifier reads."""
    collate = partial(pad_collate, pad_idx=enc.encoder.cfg.pad_idx, pad_first=True, backwards=backwards,
                      seq_len=enc.bptt)
    order = np.asarray(list(iter(SortSampler(corpus.lengths))))      # similar lengths together: less padding
    ds = ClassifierDataset(corpus)
    feats = np.zeros((len(corpus), 3 * enc.encoder.cfg.emb_sz), dtype=np.float32)
    for start in range(0, len(order), bs):
        idx = order[start:start + bs]
        x, _ = collate([ds[int(i)] for i in idx])
        feats[idx] = masked_concat_pool(*enc(x)).numpy()
    return feats


def linear_probe(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray,
                 folds: int = 5, seed: int = 0) -> dict:
    """Standardise, then L2 logistic regression with C chosen by ``folds``-fold CV on the train rows."""
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    search = GridSearchCV(pipe, {"logisticregression__C": C_GRID}, scoring="accuracy",
                          cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    search.fit(x_tr, y_tr)       # refits the best C on all train rows
    return {"cv_accuracy": float(search.best_score_), "valid_accuracy": float(search.score(x_va, y_va)),
            "C": float(search.best_params_["logisticregression__C"]), "n_train": len(y_tr), "n_valid": len(y_va)}


def probe_encoder(lm_dir: Path, data_dir: Path, itos_path: Path, direction: Direction, bptt: int = 70) -> dict:
    """Probe ``lm_dir``'s encoder on the labelled corpora ``data_dir/{train,valid}``."""
    if read_itos(Path(lm_dir) / "itos.json") != read_itos(itos_path):
        raise DataError(f"{lm_dir}/itos.json: not the vocabulary of {itos_path} (probe a fine-tuned LM, "
                        "whose rows follow the classifier corpus)")
    enc = load_encoder(lm_dir, bptt)
    train, valid = load_corpus(Path(data_dir) / "train"), load_corpus(Path(data_dir) / "valid")
    back = direction == "bwd"
    return linear_probe(encoder_features(enc, train, back), np.asarray(train.labels),
                        encoder_features(enc, valid, back), np.asarray(valid.labels))
