"""A head on precomputed features (stage ``train_head``): no backbone forward at all."""
from __future__ import annotations

from pathlib import Path

from dlpipe.core import runtime
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.io.arrays import open_store
from dlpipe.io.checkpoint import save_model
from dlpipe.tasks.transfer.classifier import (classifier_learner, darknet_checkpoint, labeled_path,
                                              labeled_store_rows, save_classifier)
from dlpipe.tasks.transfer.params import Labels, TrainHeadParams
from dlpipe.train import EpochTimer, Phase, fingerprint, fit_and_save
from dlpipe.vision.feature_data import ChunkedFeatureLoader
from dlpipe.vision.features import file_sha256, load_backbone
from dlpipe.vision.heads import Classifier, HeadParams, head_state, make_head, split_body


def train_head(*, features: Path, backbone: Path, head_out: Path, model_out: Path, labels: Labels,
               labeled: Path | None, p: TrainHeadParams, hp: HeadParams, rt: RuntimeParams, dirs: RunDirs) -> dict:
    """Train a head on stored features through the Learner (one-cycle); no backbone forward at all."""
    runtime.apply(rt)
    sha = file_sha256(backbone)
    train = open_store(Path(features) / "train", expect={"backbone_sha256": sha})
    valid = open_store(Path(features) / "valid", expect={"backbone_sha256": sha, "layer": train.meta["layer"]})
    rows = labeled_store_rows(train, labeled_path(labels, labeled))
    train_dl = ChunkedFeatureLoader(train, train.labels, p.bs, seed=rt.seed, buffer_chunks=p.buffer_chunks, rows=rows,
                                    drop_single=True)
    valid_dl = ChunkedFeatureLoader(valid, valid.labels, p.bs * 2, shuffle=False)
    classes = list(train.meta["classes"])
    row_shape = tuple(train.shape[1:])
    head = make_head(hp.config(row_shape[0], len(classes)), row_shape)
    timer = EpochTimer()
    learn = classifier_learner(head, train_dl, valid_dl, p.wd, rt, dirs,
                               fingerprint("train_head", p, hp, rt, sha, train_dl.n_rows), timer)
    prov = {"backbone_sha256": sha, "layer": train.meta["layer"], "classes": classes,
            "image_mode": train.meta["image_mode"], "size": train.meta["input_size"], "kind": "head"}

    def save(_final: dict) -> None:
        save_model(head_out, head, head_state(head), extra=prov)
        body, info = load_backbone(None, backbone, train.meta["layer"])
        save_classifier(model_out, Classifier(body, head, split_body), darknet_checkpoint(backbone),
                        train.meta["layer"], {**prov, "in_ch": info["in_ch"],
                                              "normalize": {"mean": info["mean"], "std": info["std"]}})

    m = fit_and_save(learn, [Phase("head", p.epochs, p.lr, sched_kwargs={"pct_start": p.pct_start})], save)
    return {"accuracy": round(m["accuracy"], 5), "valid_loss": round(m["valid_loss"], 5),
            "n_train": train_dl.n_rows, "n_valid": len(valid), "epoch_seconds": timer.median("head")}
