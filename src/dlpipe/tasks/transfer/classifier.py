"""The transfer task's model artifact: ``model.pt``, a self-contained classifier (backbone cut at the
feature layer + head), so evaluation treats head-only, fine-tuned and from-scratch models alike::

    train_head   features/{train,valid} --(no backbone forward)--> head.pt, model.pt (backbone + head)
    finetune     images + backbone.pt + head.pt --freeze_to(-1), then unfreeze, slice(lr/div, lr)--> model.pt
    scratch      images --same Darknet, random init, same epochs--> model.pt

The low-label variants use only the train rows listed in the index stage's ``labeled.npy``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from dlpipe.core.errors import DataError
from dlpipe.io.checkpoint import load_model, save_model
from dlpipe.models.darknet import DarknetConfig, cut, darknet
from dlpipe.tasks.transfer.params import Labels
from dlpipe.train import Optim, accuracy, adamw, make_learner
from dlpipe.vision.heads import Classifier, head_from_state, head_state, split_body


def save_classifier(path: Path, model: Classifier, darknet_cfg: dict, layer: str, extra: dict) -> None:
    """``model.pt``: backbone cut + head weights, the configs to rebuild both, and ``extra`` (classes,
    normalize, image mode/size, provenance)."""
    save_model(path, model, {"darknet": darknet_cfg, "layer": layer, **head_state(model.head)}, extra=extra)


def build_classifier(config: dict) -> Classifier:
    """An untrained classifier shaped like a ``model.pt`` config."""
    cfg = DarknetConfig(**{**config["darknet"], "layers": tuple(config["darknet"]["layers"])})
    return Classifier(cut(darknet(cfg), config["layer"]), head_from_state(config), split_body)


def load_classifier(path: Path) -> tuple[Classifier, dict]:
    """(classifier with its weights, extra) from a ``model.pt``."""
    blob = load_model(path)
    model = build_classifier(blob["config"])
    load_model(path, model)
    return model, blob["extra"]


def darknet_checkpoint(backbone: Path) -> dict:
    """The DarknetConfig of a ``backbone.pt``, as a plain dict."""
    blob = load_model(backbone)
    return {**blob["config"], "layers": list(blob["config"]["layers"])}


def labeled_path(labels: Labels, labeled: Path | None) -> Path | None:
    """The ``labeled.npy`` to train on for ``labels`` ('low'), or None (every train row)."""
    if labels == "low" and labeled is None:
        raise DataError("--labels low needs --labeled (the index stage's labeled.npy)")
    return labeled if labels == "low" else None


def labeled_store_rows(store, labeled: Path | None) -> np.ndarray | None:
    """Store rows whose index row is in ``labeled.npy`` (None: every row)."""
    if labeled is None:
        return None
    keep = np.load(labeled)
    rows = np.flatnonzero(np.isin(store.array("index_row"), keep))
    if len(rows) == 0:
        raise DataError(f"{labeled}: none of its {len(keep)} index rows is in the train features {store.path}")
    return rows


def classifier_learner(model: nn.Module, train_dl, valid_dl, wd: float, rt, dirs, fp: str, timer):
    """Cross-entropy, AdamW, accuracy and an epoch timer: what every transfer training stage uses."""
    return make_learner(model, train_dl, valid_dl, nn.functional.cross_entropy, rt=rt, dirs=dirs, fingerprint=fp,
                        optim=Optim(opt_func=adamw(), splitter=model.splitter, wd=wd), metrics=[accuracy],
                        cbs=[timer])
