"""Images through the whole network: fine-tuning the pretrained backbone + trained head (gradual
unfreezing, discriminative LRs), and the same Darknet from random init as the baseline."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from dlpipe.core import runtime
from dlpipe.core.errors import DataError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.io.checkpoint import load_model
from dlpipe.models.darknet import DarknetConfig, cut, darknet
from dlpipe.tasks.transfer.classifier import classifier_learner, darknet_checkpoint, labeled_path, save_classifier
from dlpipe.tasks.transfer.params import CutParams, FinetuneParams, Labels
from dlpipe.train import EpochTimer, Phase, fingerprint, fit_and_save, make_loader
from dlpipe.vision.features import BackboneParams, load_backbone
from dlpipe.vision.heads import Classifier, HeadParams, head_from_state, make_head, split_body
from dlpipe.vision.image_data import image_datasets, train_stats

HEAD_EXTRA = ("backbone_sha256", "layer", "classes", "image_mode", "size")


def _check_head_matches(head_path: Path, blob: dict, info: dict) -> None:
    """The head must come from features of THIS backbone."""
    have = blob["extra"]
    if have.get("backbone_sha256") != info["backbone_sha256"]:
        raise DataError(f"{head_path}: head trained on features of backbone {have.get('backbone_sha256')}, "
                        f"but fine-tuning uses {info['backbone_sha256']}: rerun precompute and train_head")


def _fit_images(model, data, p: FinetuneParams, rt, dirs: RunDirs, fp: str, phases: list[Phase], save) -> tuple[dict, EpochTimer]:
    """Fit ``model`` on (train, valid) image datasets through ``phases``; rank 0 ``save()``s it."""
    train_ds, valid_ds = data
    timer = EpochTimer()
    learn = classifier_learner(model, make_loader(train_ds, p.bs, True, rt.seed, drop_single=True),
                               make_loader(valid_ds, p.bs * 2, False, rt.seed), p.wd, rt, dirs, fp, timer)
    return fit_and_save(learn, phases, lambda _: save()), timer


def _metrics(m: dict, n_train: int, timer: EpochTimer, phase: str, **extra) -> dict:
    return {"accuracy": round(m["accuracy"], 5), "valid_loss": round(m["valid_loss"], 5), "n_train": n_train,
            "epoch_seconds": timer.median(phase), **extra}


def finetune(*, raw: Path, index_dir: Path, model_out: Path, backbone: Path, head: Path, labels: Labels,
             labeled: Path | None, p: FinetuneParams, rt: RuntimeParams, dirs: RunDirs) -> dict:
    """Backbone (cut at the head's feature layer) + the trained head; gradual unfreezing, discriminative LRs."""
    runtime.apply(rt)
    blob = load_model(head)
    layer = blob["extra"]["layer"]
    body, info = load_backbone(None, backbone, layer)
    body.requires_grad_(True)
    _check_head_matches(head, blob, info)
    head_net = head_from_state(blob["config"])
    load_model(head, head_net)
    model = Classifier(body, head_net, split_body)
    extra = {**{k: blob["extra"][k] for k in HEAD_EXTRA},
             "normalize": {"mean": info["mean"], "std": info["std"]}, "in_ch": info["in_ch"], "kind": "finetune"}
    data = image_datasets(raw, index_dir, extra, info["in_ch"], labeled_path(labels, labeled), p.aug)
    kw = {"pct_start": p.pct_start}
    phases = [Phase("head", p.epochs_head, p.lr, freeze_to=-1, sched_kwargs=kw),
              Phase("all", p.epochs_all, slice(p.lr / p.lr_div, p.lr), sched_kwargs=kw)]
    fp = fingerprint("finetune", p, rt, info["backbone_sha256"], len(data[0]))
    m, timer = _fit_images(model, data, p, rt, dirs, fp, phases,
                           lambda: save_classifier(model_out, model, darknet_checkpoint(backbone), layer, extra))
    return _metrics(m, len(data[0]), timer, "all", epoch_seconds_head_phase=timer.median("head"))


def scratch(*, raw: Path, index_dir: Path, model_out: Path, labels: Labels, labeled: Path | None,
            p: FinetuneParams, head_p: HeadParams, bb: BackboneParams, cut_p: CutParams, rt: RuntimeParams,
            dirs: RunDirs) -> dict:
    """The same Darknet + head from random init, same images and total epochs, all layers at ``lr``."""
    runtime.apply(rt)
    mode = "L" if bb.in_ch == 1 else "RGB"
    classes, stats = train_stats(raw, index_dir, mode, cut_p.size)
    cfg = DarknetConfig(in_ch=bb.in_ch, nf=bb.nf, layers=tuple(bb.layers), n_classes=len(classes))
    body = cut(darknet(cfg), cut_p.layer)
    with torch.no_grad():
        row_shape = tuple(body.eval()(torch.zeros(1, bb.in_ch, cut_p.size, cut_p.size)).shape[1:])
    head = make_head(head_p.config(row_shape[0], len(classes)), row_shape)
    model = Classifier(body, head, split_body)
    extra = {"classes": classes, "layer": cut_p.layer, "image_mode": mode, "size": cut_p.size,
             "normalize": stats, "in_ch": bb.in_ch, "kind": "scratch"}
    data = image_datasets(raw, index_dir, extra, bb.in_ch, labeled_path(labels, labeled), p.aug)
    epochs = p.epochs_head + p.epochs_all
    fp = fingerprint("scratch", p, head_p, bb, cut_p, rt, len(data[0]))
    darknet_cfg = dataclasses.asdict(cfg) | {"layers": list(cfg.layers)}
    m, timer = _fit_images(model, data, p, rt, dirs, fp, [Phase("scratch", epochs, p.lr,
                                                               sched_kwargs={"pct_start": p.pct_start})],
                           lambda: save_classifier(model_out, model, darknet_cfg, cut_p.layer, extra))
    return _metrics(m, len(data[0]), timer, "scratch", epochs=epochs)
