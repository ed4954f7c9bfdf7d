"""Vision task, model side: a head on precomputed features, fine-tuning, and a from-scratch baseline.

Stage functions take paths + params dataclasses and return metrics dicts (DESIGN "Stages").
Every trained model is saved as a self-contained classifier (``model.pt``: backbone cut at the
feature layer + head) so evaluation treats head-only, fine-tuned and from-scratch models alike::

    train_head   features/{train,valid} --(no backbone forward)--> head.pt, model.pt (backbone + head)
    finetune     images + backbone.pt + head.pt --freeze_to(-1), then unfreeze, slice(lr/div, lr)--> model.pt
    scratch      images --same Darknet, random init, same epochs--> model.pt

The low-label variants use only the train rows listed in the index stage's ``labeled.npy``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlpipe.errors import DataError
from dlpipe.io.arrays import open_store
from dlpipe.io.checkpoint import load_model, save_model
from dlpipe.models.darknet import DarknetConfig, cut, darknet
from dlpipe import runtime
from dlpipe.runtime import RuntimeParams
from dlpipe.tasks.vision_features import PrecomputeParams
from dlpipe.train import Callback, Learner, accuracy, adamw, is_main, make_loader
from dlpipe.vision.feature_data import ChunkedFeatureLoader
from dlpipe.vision.features import BackboneParams, file_sha256, load_backbone
from dlpipe.vision.heads import Classifier, HeadParams, head_from_state, head_state, make_head, split_body
from dlpipe.vision.image_data import AugParams, image_datasets, train_stats


@dataclass(frozen=True)
class TrainHeadParams:
    bs: int = field(metadata=dict(ge=1))
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    wd: float = field(metadata=dict(ge=0.0))
    buffer_chunks: int = field(metadata=dict(ge=1))     # store chunks shuffled together


@dataclass(frozen=True)
class FinetuneParams:
    bs: int = field(metadata=dict(ge=1))
    epochs_head: int = field(metadata=dict(ge=0))       # phase "head": freeze_to(-1)
    epochs_all: int = field(metadata=dict(ge=1))        # phase "all": unfreeze(), slice(lr / lr_div, lr)
    lr: float = field(metadata=dict(gt=0.0))
    lr_div: float = field(metadata=dict(ge=1.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    wd: float = field(metadata=dict(ge=0.0))
    aug: AugParams


class EpochTimer(Callback):
    """Wall-clock seconds of each epoch's training part (validation excluded), per phase."""

    order = 40

    def __init__(self):
        self.times: dict[str, list[float]] = {}

    def before_epoch(self):
        self._t0 = time.perf_counter()

    def before_validate(self):
        if self.learn.training:   # the end-of-epoch validation, not a standalone learn.validate()
            self.times.setdefault(self.learn.phase, []).append(time.perf_counter() - self._t0)

    def median(self, phase: str) -> float:
        t = self.times.get(phase, [])
        return round(float(np.median(t)), 4) if t else float("nan")

    def state_dict(self) -> dict:
        return {"times": self.times}

    def load_state_dict(self, state: dict) -> None:
        self.times = {k: list(v) for k, v in state["times"].items()}


def _fingerprint(*parts) -> str:
    return json.dumps([dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True,
                      default=str)


def _learner(model, train_dl, valid_dl, wd, rt, log_dir, run_dir, fingerprint, timer) -> Learner:
    return Learner(model, train_dl, valid_dl, nn.functional.cross_entropy, opt_func=adamw(), splitter=model.splitter,
                   metrics=[accuracy], cbs=[timer], wd=wd, device=rt.device, seed=rt.seed, run_dir=run_dir,
                   log_dir=log_dir, fingerprint=fingerprint)


def _labeled_store_rows(store, labeled: Path | None) -> np.ndarray | None:
    """Store rows whose index row is in ``labeled.npy`` (None: every row)."""
    if labeled is None:
        return None
    keep = np.load(labeled)
    rows = np.flatnonzero(np.isin(store.array("index_row"), keep))
    if len(rows) == 0:
        raise DataError(f"{labeled}: none of its {len(keep)} index rows is in the train features {store.path}")
    return rows


# ---- classifier artifacts ----------------------------------------------------------------------
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


def _darknet_checkpoint(backbone: Path) -> dict:
    blob = load_model(backbone)
    return {**blob["config"], "layers": list(blob["config"]["layers"])}


# ---- train_head ----------------------------------------------------------------------------------
def train_head(features: Path, backbone: Path, head_out: Path, model_out: Path, log_dir: Path,
               run_dir: Path | None, labeled: Path | None, p: TrainHeadParams, hp: HeadParams,
               rt: RuntimeParams) -> dict:
    """Train a head on stored features through the Learner (one-cycle); no backbone forward at all."""
    runtime.apply(rt)
    sha = file_sha256(backbone)
    train = open_store(Path(features) / "train", expect={"backbone_sha256": sha})
    valid = open_store(Path(features) / "valid", expect={"backbone_sha256": sha, "layer": train.meta["layer"]})
    rows = _labeled_store_rows(train, labeled)
    train_dl = ChunkedFeatureLoader(train, train.labels, p.bs, seed=rt.seed, buffer_chunks=p.buffer_chunks, rows=rows,
                                    drop_single=True)
    valid_dl = ChunkedFeatureLoader(valid, valid.labels, p.bs * 2, shuffle=False)
    classes = list(train.meta["classes"])
    row_shape = tuple(train.shape[1:])
    head = make_head(hp.config(row_shape[0], len(classes)), row_shape)
    timer = EpochTimer()
    learn = _learner(head, train_dl, valid_dl, p.wd, rt, log_dir, run_dir,
                     _fingerprint(p, hp, rt, sha, train_dl.n_rows), timer)
    learn.fit(p.epochs, lr=p.lr, schedule="one_cycle", phase="head", pct_start=p.pct_start)
    m = learn.validate()
    prov = {"backbone_sha256": sha, "layer": train.meta["layer"], "classes": classes,
            "image_mode": train.meta["image_mode"], "size": train.meta["input_size"], "kind": "head"}
    if is_main():
        save_model(head_out, head, head_state(head), extra=prov)
        body, info = load_backbone(None, backbone, train.meta["layer"])
        save_classifier(model_out, Classifier(body, head, split_body), _darknet_checkpoint(backbone),
                        train.meta["layer"], {**prov, "in_ch": info["in_ch"],
                                              "normalize": {"mean": info["mean"], "std": info["std"]}})
    learn.finish()
    return {"accuracy": round(m["accuracy"], 5), "valid_loss": round(m["valid_loss"], 5),
            "n_train": train_dl.n_rows, "n_valid": len(valid), "epoch_seconds": timer.median("head")}


# ---- finetune / scratch --------------------------------------------------------------------------
def _check_head_matches(head_path: Path, blob: dict, info: dict, layer: str) -> None:
    """The head must come from features of THIS backbone cut at THIS layer."""
    have = blob["extra"]
    if have.get("backbone_sha256") != info["backbone_sha256"] or have.get("layer") != layer:
        raise DataError(f"{head_path}: head trained on features of backbone {have.get('backbone_sha256')} at layer "
                        f"{have.get('layer')!r}, but fine-tuning uses {info['backbone_sha256']} at {layer!r}: "
                        "rerun precompute and train_head")


def _fit_images(model, data, p: FinetuneParams, rt, log_dir, run_dir, fingerprint, phases) -> tuple[dict, EpochTimer, Learner]:
    """Fit ``model`` on image datasets through ``phases`` [(name, epochs, freeze_to or None, lr)]."""
    train_ds, valid_ds = data
    timer = EpochTimer()
    learn = _learner(model, make_loader(train_ds, p.bs, True, rt.seed, drop_single=True),
                     make_loader(valid_ds, p.bs * 2, False, rt.seed),
                     p.wd, rt, log_dir, run_dir, fingerprint, timer)
    for name, epochs, freeze, lr in phases:
        if epochs == 0:
            continue
        learn.freeze_to(freeze) if freeze is not None else learn.unfreeze()
        learn.fit(epochs, lr=lr, schedule="one_cycle", phase=name, pct_start=p.pct_start)
    return learn.validate(), timer, learn


def finetune(raw: Path, index_dir: Path, backbone: Path, head_path: Path, model_out: Path, log_dir: Path,
             run_dir: Path | None, labeled: Path | None, p: FinetuneParams, pre: PrecomputeParams,
             rt: RuntimeParams) -> dict:
    """Backbone (cut at the precompute layer) + the trained head; gradual unfreezing, discriminative LRs."""
    runtime.apply(rt)
    body, info = load_backbone(None, backbone, pre.layer)
    body.requires_grad_(True)
    blob = load_model(head_path)
    _check_head_matches(head_path, blob, info, pre.layer)
    head = head_from_state(blob["config"])
    load_model(head_path, head)
    model = Classifier(body, head, split_body)
    extra = {**{k: blob["extra"][k] for k in ("backbone_sha256", "layer", "classes", "image_mode", "size")},
             "normalize": {"mean": info["mean"], "std": info["std"]}, "in_ch": info["in_ch"], "kind": "finetune"}
    data = image_datasets(raw, index_dir, extra, info["in_ch"], labeled, p.aug)
    phases = [("head", p.epochs_head, -1, p.lr), ("all", p.epochs_all, None, slice(p.lr / p.lr_div, p.lr))]
    m, timer, learn = _fit_images(model, data, p, rt, log_dir, run_dir, _fingerprint(p, rt, info["backbone_sha256"],
                                                                              len(data[0])), phases)
    if is_main():
        save_classifier(model_out, model, _darknet_checkpoint(backbone), pre.layer, extra)
    learn.finish()
    return {"accuracy": round(m["accuracy"], 5), "valid_loss": round(m["valid_loss"], 5), "n_train": len(data[0]),
            "epoch_seconds": timer.median("all"), "epoch_seconds_head_phase": timer.median("head")}


def scratch(raw: Path, index_dir: Path, model_out: Path, log_dir: Path, run_dir: Path | None, labeled: Path | None,
            p: FinetuneParams, head_p: HeadParams, bb: BackboneParams, pre: PrecomputeParams,
            rt: RuntimeParams) -> dict:
    """The same Darknet + head from random init, same images and total epochs, all layers at ``lr``."""
    runtime.apply(rt)
    mode = "L" if bb.in_ch == 1 else "RGB"
    classes, stats = train_stats(raw, index_dir, mode, pre.size)
    cfg = DarknetConfig(in_ch=bb.in_ch, nf=bb.nf, layers=tuple(bb.layers), n_classes=len(classes))
    body = cut(darknet(cfg), pre.layer)
    with torch.no_grad():
        row_shape = tuple(body.eval()(torch.zeros(1, bb.in_ch, pre.size, pre.size)).shape[1:])
    head = make_head(head_p.config(row_shape[0], len(classes)), row_shape)
    model = Classifier(body, head, split_body)
    extra = {"classes": classes, "layer": pre.layer, "image_mode": mode, "size": pre.size,
             "normalize": stats, "in_ch": bb.in_ch, "kind": "scratch"}
    data = image_datasets(raw, index_dir, extra, bb.in_ch, labeled, p.aug)
    epochs = p.epochs_head + p.epochs_all
    m, timer, learn = _fit_images(model, data, p, rt, log_dir, run_dir, _fingerprint(p, head_p, bb, pre, rt, len(data[0])),
                           [("scratch", epochs, None, p.lr)])
    if is_main():
        save_classifier(model_out, model, dataclasses.asdict(cfg) | {"layers": list(cfg.layers)}, pre.layer, extra)
    learn.finish()
    return {"accuracy": round(m["accuracy"], 5), "valid_loss": round(m["valid_loss"], 5), "n_train": len(data[0]),
            "epoch_seconds": timer.median("scratch"), "epochs": epochs}

