"""Super-resolution training (stage ``train_superres@<variant>``; :mod:`.finetune` trains on from its model).

``train_superres``: EDSR from scratch with pixel L1 (the PSNR-optimal loss), one-cycle Adam, progressive
resizing — ``small`` x the patch side first, then the full patch::

    small   patch * small, lr                  cheap steps learn the local filters
    full    patch, lr                          the context of the full patch

Every epoch validates the Y-PSNR (border = scale) of the held-out photos' centre crops.

Output ``model.pt`` (:func:`dlpipe.io.checkpoint.save_model`: the EDSR state_dict, its config, ``extra`` =
variant, loss, final validation metrics).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlpipe.core import runtime
from dlpipe.core.errors import ParamsError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.io.checkpoint import save_model
from dlpipe.models.edsr import EdsrConfig, edsr
from dlpipe.tasks.superres.index import load_photos
from dlpipe.tasks.superres.params import DataParams, ModelParams, ScaleParams, TrainParams
from dlpipe.train import EpochTimer, Optim, Phase, adamw, fingerprint, fit_and_save, make_learner, make_loader
from dlpipe.vision.seg_data import ProgressiveResize, channels_last_collate
from dlpipe.vision.sr_data import PatchDataset
from dlpipe.vision.sr_quality import batch_psnr_y, bicubic_resize, psnr_y, to_uint8


def adam(p, key: str) -> Optim:
    """Adam with ``p``'s beta2 and eps (EDSR: 0.999, 1e-8), no weight decay unless ``p`` has it."""
    if len(p.moms) != 2:
        raise ParamsError(f"{key}.moms: {p.moms}: expected two numbers (beta1 at the start and at the peak lr)")
    return Optim(opt_func=adamw(betas=(p.moms[0], p.beta2), eps=p.eps), wd=getattr(p, "wd", 0.0))


def cycle(p) -> dict:
    """The one-cycle schedule's settings: warm-up share and the beta1 range."""
    return {"pct_start": p.pct_start, "moms": tuple(p.moms)}


def check_scale(s: ScaleParams, d: DataParams, variant: str) -> None:
    """Patch sides that the scale divides (the LR patch is patch / scale)."""
    for key, v in ((f"superres.variants.{variant}.patch", s.patch), ("superres.data.valid_patch", d.valid_patch)):
        if v % s.scale:
            raise ParamsError(f"{key}: {v}: expected a multiple of the scale {s.scale}")


def sr_learner(net, photos: Path, s: ScaleParams, d: DataParams, loss, rt: RuntimeParams, dirs: RunDirs,
               fp: str, optim: Optim, cbs=()):
    """The Learner over random training patches and the held-out photos' centre crops."""
    train = load_photos(photos, "train", min_side=s.patch)
    valid = load_photos(photos, "valid", min_side=d.valid_patch)
    train_ds = PatchDataset(train, s.scale, s.patch, train=True, repeat=d.repeat)
    valid_ds = PatchDataset(valid, s.scale, d.valid_patch, train=False)
    learn = make_learner(net, make_loader(train_ds, d.bs, True, rt.seed, drop_single=True, collate_fn=channels_last_collate),
                         make_loader(valid_ds, 4, False, rt.seed, collate_fn=channels_last_collate), loss, rt=rt, dirs=dirs,
                         fingerprint=fp, optim=optim,
                         metrics=[batch_psnr_y(s.scale)], cbs=list(cbs), config=dataclasses.asdict(net.cfg))
    return learn, len(train), valid_ds


def bicubic_psnr(valid: PatchDataset) -> float:
    """Mean Y-PSNR of bicubic upsampling on the validation crops: the floor the model must beat."""
    scores = []
    for lr, hr in (valid[i] for i in range(len(valid))):
        hr8 = to_uint8(hr)
        scores.append(psnr_y(bicubic_resize(to_uint8(lr), hr8.shape[:2]), hr8, valid.scale))
    return float(np.mean(scores))


def run_summary(variant: str, final: dict, secs: float, timer: EpochTimer, n_train: int, valid: PatchDataset, net) -> dict:
    return {"variant": variant, "valid_psnr_y": round(final["psnr"], 3), "valid_bicubic_psnr_y": round(bicubic_psnr(valid), 3),
            "valid_loss": round(final["valid_loss"], 5),
            "train_seconds": round(secs, 1), "epochs": {k: len(t) for k, t in timer.times.items()},
            "seconds_per_epoch": {k: round(sum(t) / len(t), 2) for k, t in timer.times.items() if t},
            "n_train_photos": n_train, "n_valid_photos": len(valid), "n_params": sum(q.numel() for q in net.parameters())}


def train_superres(*, photos: Path, model: Path, variant: str, m: ModelParams, s: ScaleParams, d: DataParams,
                   p: TrainParams, rt: RuntimeParams, dirs: RunDirs) -> dict:
    """Train one scale with pixel L1; returns the final validation PSNR and timings."""
    runtime.apply(rt)
    check_scale(s, d, variant)
    cfg = EdsrConfig(scale=s.scale, nf=m.nf, n_blocks=m.n_blocks, res_scale=m.res_scale, bicubic_skip=m.bicubic_skip)
    net = edsr(cfg).to(memory_format=torch.channels_last)       # NHWC: oneDNN's fast convolutions
    # the (1, 3, 1, 1) mean buffer comes out of channels_last with overlapping strides, which DDP's buffer
    # broadcast rejects: the same values, laid out plainly
    net.mean = net.mean.clone(memory_format=torch.contiguous_format)
    timer = EpochTimer()
    fp = fingerprint("train_superres", variant, m, s, d, p, rt.seed, files=(Path(photos) / "photos.csv",))
    learn, n_tr, valid = sr_learner(net, photos, s, d, F.l1_loss, rt, dirs, fp, adam(p, "superres.train"),
                                    cbs=[timer, ProgressiveResize({"small": p.small})])
    kw = cycle(p)
    t0 = time.perf_counter()
    final = fit_and_save(learn, [Phase("small", p.small_epochs, p.lr, sched_kwargs=kw),
                                 Phase("full", p.full_epochs, p.lr, sched_kwargs=kw)],
                         lambda final: save_model(model, net, dataclasses.asdict(cfg),
                                                  extra={"variant": variant, "loss": "l1", "valid": final}))
    return run_summary(variant, final, time.perf_counter() - t0, timer, n_tr, valid, net)
