"""DeViSE, stage ``devise_train``: a head on the precomputed image features regressing each image's
class word vector with the cosine loss (1 - cos), one-cycle."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlpipe.core import runtime
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.io.arrays import open_store
from dlpipe.io.checkpoint import save_model
from dlpipe.tasks.devise.params import TrainParams
from dlpipe.tasks.devise.vocab import read_class_vectors
from dlpipe.train import Optim, Phase, adamw, fingerprint, fit_and_save, make_learner
from dlpipe.vision.devise import cosine_loss, cosine_sim
from dlpipe.vision.feature_data import ChunkedFeatureLoader
from dlpipe.vision.heads import head_state, make_head


def matched_rows(store, matched: list[bool]) -> np.ndarray:
    """Store rows whose class has a word vector (images of unmatched classes are left out)."""
    return np.flatnonzero(np.asarray(matched)[store.labels])


def _loaders(features: Path, vecs: np.ndarray, matched: list[bool], bs: int, seed: int):
    train = open_store(Path(features) / "train")
    valid = open_store(Path(features) / "valid", expect={"backbone_sha256": train.meta["backbone_sha256"],
                                                         "layer": train.meta["layer"]})
    # targets: each row's class vector (n_rows, emb_sz)
    return (train, ChunkedFeatureLoader(train, vecs[train.labels], bs, seed=seed, rows=matched_rows(train, matched),
                                        drop_single=True),
            ChunkedFeatureLoader(valid, vecs[valid.labels], bs * 2, shuffle=False, rows=matched_rows(valid, matched)))


def train(*, features: Path, vectors: Path, head_out: Path, p: TrainParams, rt: RuntimeParams, dirs: RunDirs) -> dict:
    """Fit a head mapping stored features to class word vectors with the cosine loss (one-cycle)."""
    runtime.apply(rt)
    info, vecs = read_class_vectors(vectors)
    store, train_dl, valid_dl = _loaders(features, vecs, info["matched"], p.bs, rt.seed)
    row_shape = tuple(store.shape[1:])
    head = make_head(p.head.config(row_shape[0], vecs.shape[1]), row_shape)
    fp = fingerprint("devise_train", p, rt, store.meta["backbone_sha256"], vecs.shape)
    learn = make_learner(head, train_dl, valid_dl, cosine_loss, rt=rt, dirs=dirs, fingerprint=fp,
                         optim=Optim(opt_func=adamw(), splitter=head.splitter, wd=p.wd), metrics=[cosine_sim])
    extra = {"backbone_sha256": store.meta["backbone_sha256"], "layer": store.meta["layer"]}
    m = fit_and_save(learn, [Phase("devise", p.epochs, p.lr, sched_kwargs={"pct_start": p.pct_start})],
                     lambda _: save_model(head_out, head, head_state(head), extra=extra))
    return {"valid_cosine_loss": round(m["valid_loss"], 5), "valid_cosine_sim": round(m["cosine_sim"], 5),
            "n_train": train_dl.n_rows, "n_valid": valid_dl.n_rows}


