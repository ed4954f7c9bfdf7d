"""Perceptual-loss fine-tuning of a super-resolution model (stage ``finetune_superres@<variant>``).

The L1 model (``train_superres``) trained on with fastai's FeatureLoss: pixel L1 + loss-network feature
L1 + Gram L1 (:class:`dlpipe.vision.loss_network.PerceptualLoss`), which trades PSNR for texture — the
validation PSNR falls, the edge energy rises towards the ground truth's. One phase, one-cycle Adam, the
same patches as the L1 training. ``extra`` of the output adds the loss network's provenance.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from dlpipe.core import runtime
from dlpipe.core.errors import ParamsError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.io.checkpoint import save_model
from dlpipe.models.edsr import load_edsr
from dlpipe.tasks.superres.params import DataParams, FinetuneParams, LossNetworkParams, ScaleParams
from dlpipe.tasks.superres.train import adam, check_scale, cycle, run_summary, sr_learner
from dlpipe.train import EpochTimer, Phase, fingerprint, fit_and_save
from dlpipe.vision.loss_network import PerceptualLoss, load_loss_network


def finetune_superres(*, photos: Path, init: Path, backbone: Path, model: Path, variant: str, s: ScaleParams,
                      d: DataParams, ln: LossNetworkParams, p: FinetuneParams, rt: RuntimeParams, dirs: RunDirs) -> dict:
    """Train the L1 model ``init`` on with the perceptual loss; returns the final validation PSNR and timings."""
    runtime.apply(rt)
    check_scale(s, d, variant)
    net, blob = load_edsr(init)
    if net.cfg.scale != s.scale:
        raise ParamsError(f"{init}: a x{net.cfg.scale} model, but superres.variants.{variant}.scale is {s.scale}")
    net = net.train().to(memory_format=torch.channels_last)
    net.mean = net.mean.clone(memory_format=torch.contiguous_format)   # DDP's buffer broadcast (see train.py)
    lossnet = load_loss_network(ln.source, backbone, ln.layers, ln.seed, key="superres.loss_network")
    loss = PerceptualLoss(lossnet, ln.layer_weights, p.pixel_weight, p.gram_weight)
    timer = EpochTimer()
    files = (Path(init), Path(photos) / "photos.csv", *([] if ln.source.startswith("random_vgg:") else [Path(backbone)]))
    fp = fingerprint("finetune_superres", variant, s, d, ln, p, rt.seed, files=files)   # the loss network's file too
    learn, n_tr, valid = sr_learner(net, photos, s, d, loss, rt, dirs, fp, adam(p, "superres.finetune"), cbs=[timer])
    t0 = time.perf_counter()
    extra = {"variant": variant, "loss": "perceptual", "loss_network": lossnet.info, "init_valid": blob["extra"].get("valid")}
    final = fit_and_save(learn, [Phase("perceptual", p.epochs, p.lr, sched_kwargs=cycle(p))],
                         lambda final: save_model(model, net, dataclasses.asdict(net.cfg), extra={**extra, "valid": final}))
    return {**run_summary(variant, final, time.perf_counter() - t0, timer, n_tr, valid, net),
            "init_valid_psnr_y": round(blob["extra"]["valid"]["psnr"], 3), "loss_network": lossnet.info}
