"""U-Net training (stage ``train_unet@<variant>``): the U-Net and its two yardsticks, one recipe.

Variants (params ``unet.variants``): ``unet`` (pretrained encoder + skips), ``noskip`` (the same decoder
without skip connections), ``scratch`` (the same U-Net, encoder randomly initialised). The recipe
(fastai's lesson-14 fit, re-expressed as phases of the one Learner)::

    frozen  encoder frozen (its BN trains), decoder at lr            images at `small` x full size
    small   everything, slice(lr / enc_div, lr)                      same size
    full    everything, the same lrs / full_lr_div                   full size (progressive resizing)

A scratch encoder has nothing to protect: its frozen epochs join ``small`` and its lr is flat.

Output ``model.pt`` (:func:`dlpipe.io.checkpoint.save_model`: the U-Net's state_dict, its config with
the encoder's spec, ``extra`` = classes, void, encoder provenance, variant).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from dlpipe.core import runtime
from dlpipe.core.errors import ParamsError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.io.checkpoint import save_model
from dlpipe.models.unet import UnetConfig, unet
from dlpipe.tasks.unet.index import load_meta, load_split
from dlpipe.tasks.unet.params import DataParams, EncoderParams, ModelParams, TrainParams, VariantParams
from dlpipe.train import EpochTimer, Optim, Phase, adamw, fingerprint, fit_and_save, make_learner, make_loader
from dlpipe.vision.encoder import load_encoder
from dlpipe.vision.seg_data import ProgressiveResize, SegDataset, channels_last_collate
from dlpipe.vision.segment import median_freq_weights, pixel_accuracy_metric, seg_loss


def scaled(lr, k: float):
    """``lr`` (float or slice) divided by ``k``."""
    return slice(lr.start / k, lr.stop / k) if isinstance(lr, slice) else lr / k


def check_data(d: DataParams) -> None:
    """What the dataclass cannot say: (h, w) pairs and a [lo, hi] zoom range."""
    for key, v in (("crop", d.crop), ("valid_size", d.valid_size), ("scale", d.scale)):
        if len(v) != 2:
            raise ParamsError(f"unet.data.{key}: {v}: expected two numbers ({'lo, hi' if key == 'scale' else 'h, w'})")
    if d.scale[0] > d.scale[1]:
        raise ParamsError(f"unet.data.scale: {d.scale}: expected lo <= hi")


def unet_phases(p: TrainParams, pretrained: bool) -> list[Phase]:
    """frozen -> small -> full (see the module docstring); epochs-0 phases are skipped."""
    lr = slice(p.lr / p.enc_div, p.lr) if pretrained else p.lr
    kw = {"pct_start": p.pct_start}
    return [Phase("frozen", p.frozen_epochs if pretrained else 0, p.lr, freeze_to=-1, sched_kwargs=kw),
            Phase("small", p.small_epochs + (0 if pretrained else p.frozen_epochs), lr, sched_kwargs=kw),
            Phase("full", p.full_epochs, scaled(lr, p.full_lr_div), sched_kwargs=kw)]


def train_unet(*, data: Path, backbone: Path, model: Path, variant: str, e: EncoderParams, m: ModelParams,
               v: VariantParams, d: DataParams, p: TrainParams, rt: RuntimeParams, dirs: RunDirs) -> dict:
    """Train one variant; returns the final validation metrics, epoch timings and the encoder's provenance."""
    runtime.apply(rt)
    check_data(d)
    meta = load_meta(data)
    classes, void = meta["classes"], meta["void"]
    x_tr, y_tr = load_split(data, "train")
    x_va, y_va = load_split(data, "valid")
    encoder, enc_info = load_encoder(e.weights, backbone, e.taps, pretrained=v.pretrained)
    cfg = UnetConfig(n_classes=len(classes), encoder=encoder.spec, skip=v.skip, blur=m.blur)
    net = unet(cfg, encoder).to(memory_format=torch.channels_last)   # NHWC: ~2x faster convolutions (oneDNN)
    weights = None if p.class_weights == "none" else \
        median_freq_weights(y_tr, len(classes)) ** (0.5 if p.class_weights == "sqrt_median_freq" else 1.0)
    train_ds = SegDataset(x_tr, y_tr, void, train=True, scale=d.scale, crop=d.crop, flip=d.flip, repeat=d.repeat)
    valid_ds = SegDataset(x_va, y_va, void, size=d.valid_size)
    timer = EpochTimer()
    fp = fingerprint("train_unet", variant, e, m, v, d, p, rt.seed, files=(Path(backbone), Path(data) / "train_masks.npy"))
    learn = make_learner(net, make_loader(train_ds, d.bs, True, rt.seed, drop_single=True, collate_fn=channels_last_collate),
                         make_loader(valid_ds, d.bs, False, rt.seed, collate_fn=channels_last_collate),
                         seg_loss(p.loss, void, None if weights is None else weights.tolist()), rt=rt, dirs=dirs,
                         fingerprint=fp, optim=Optim(opt_func=adamw(), splitter=net.splitter, wd=p.wd, amp=True),
                         metrics=[pixel_accuracy_metric(void)], cbs=[timer, ProgressiveResize({"frozen": p.small, "small": p.small})],
                         config=dataclasses.asdict(cfg))
    t0 = time.perf_counter()
    extra = {"classes": classes, "void": void, "encoder": enc_info, "variant": variant}
    final = fit_and_save(learn, unet_phases(p, v.pretrained),
                         lambda final: save_model(model, net, dataclasses.asdict(cfg), extra={**extra, "valid": final}))
    secs = time.perf_counter() - t0
    epochs = {k: len(t) for k, t in timer.times.items()}
    return {"variant": variant, "valid_pixel_accuracy": round(final["pixel_accuracy"], 4),
            "valid_loss": round(final["valid_loss"], 4), "valid_size": list(d.valid_size),
            "epochs": epochs, "train_seconds": round(secs, 1),
            "seconds_per_epoch": {k: round(float(np.mean(t)), 2) for k, t in timer.times.items() if t},
            "n_train": len(x_tr), "n_params": sum(q.numel() for q in net.parameters()),
            "class_weights": None if weights is None else {c: round(float(w), 3) for c, w in zip(classes, weights)},
            "encoder": {k: enc_info[k] for k in ("source", "taps", "channels", "strides", "pretrained")}}
