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

from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlpipe.core.errors import DataError
from dlpipe.io.checkpoint import load_model
from dlpipe.models.awd_lstm import AWDLSTMConfig, AWDLSTMEncoder
from dlpipe.models.text_classifier import MultiBatchEncoder, masked_concat_pool
from dlpipe.train.predict import predict_batches
from dlpipe.tasks.ulmfit.classifier import clas_collate
from dlpipe.tasks.ulmfit.params import Direction
from dlpipe.text.corpus import Corpus, load_corpus
from dlpipe.text.samplers import sorted_batches
from dlpipe.text.vocab import read_itos

C_GRID = np.logspace(-4, 1, 11)   # inverse L2 strengths tried by the cross-validation


def load_encoder(lm_dir: Path, bptt: int) -> MultiBatchEncoder:
    """The ``encoder.pt`` of an LM directory, wrapped to read whole documents ``bptt`` at a time."""
    blob = load_model(Path(lm_dir) / "encoder.pt")
    enc = AWDLSTMEncoder(AWDLSTMConfig(**blob["config"]))
    load_model(Path(lm_dir) / "encoder.pt", enc)
    return MultiBatchEncoder(enc, bptt, max_len=bptt).eval()


class PooledEncoder(torch.nn.Module):
    """The classifier's view of an encoder: concat-pooled last-layer features (bs, 3·emb)."""

    def __init__(self, enc: MultiBatchEncoder):
        super().__init__()
        self.enc = enc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return masked_concat_pool(*self.enc(x))


def encoder_features(enc: MultiBatchEncoder, corpus: Corpus, backwards: bool, bs: int = 64) -> np.ndarray:
    """Concat-pooled features (n_docs, 3·emb) in corpus order, read exactly as the classifier reads."""
    batches = list(sorted_batches(corpus, bs, clas_collate(enc.encoder.cfg.pad_idx, backwards, enc.bptt)))
    feats = np.zeros((len(corpus), 3 * enc.encoder.cfg.emb_sz), dtype=np.float32)
    for (idx, _), f in zip(batches, predict_batches(PooledEncoder(enc), (x for _, x in batches), "cpu")):
        feats[idx] = f.numpy()
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
