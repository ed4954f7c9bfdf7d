"""Pretrain the Darknet backbone on MNIST digits with one-cycle (stage ``pretrain_backbone``).

Output: ``backbone.pt`` from :func:`dlpipe.io.checkpoint.save_model`: state_dict, the DarknetConfig, and
``extra["normalize"]`` (the per-channel mean/std of the training digits) so precompute feeds it the same inputs.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from dlpipe.core import runtime
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.io.checkpoint import save_model
from dlpipe.models.darknet import DarknetConfig, darknet
from dlpipe.tasks.transfer.params import PretrainParams
from dlpipe.train import Optim, Phase, accuracy, adamw, fingerprint, fit_and_save, make_learner, make_loader
from dlpipe.vision.features import BackboneParams
from dlpipe.vision.transforms import ImageArrayDataset, channel_stats


def pretrain_backbone(*, src: Path, model: Path, bb: BackboneParams, p: PretrainParams, rt: RuntimeParams,
                      dirs: RunDirs) -> dict:
    """Train Darknet on the MNIST digit split with one-cycle; save it with its input normalisation."""
    src = Path(src)
    runtime.apply(rt)
    xs = {s: np.load(src / f"{s}_images.npy") for s in ("train", "valid")}
    ys = {s: np.load(src / f"{s}_labels.npy") for s in ("train", "valid")}
    mean, std = channel_stats(xs["train"])
    train_ds = ImageArrayDataset(xs["train"], ys["train"], bb.in_ch, mean, std, pad=p.pad)
    valid_ds = ImageArrayDataset(xs["valid"], ys["valid"], bb.in_ch, mean, std)
    cfg = DarknetConfig(in_ch=bb.in_ch, nf=bb.nf, layers=tuple(bb.layers), n_classes=int(ys["train"].max()) + 1)
    net = darknet(cfg)
    learn = make_learner(net, make_loader(train_ds, p.bs, True, rt.seed, drop_single=True),
                         make_loader(valid_ds, p.bs * 2, False, rt.seed), torch.nn.functional.cross_entropy,
                         rt=rt, dirs=dirs, fingerprint=fingerprint("pretrain_backbone", bb, p, rt.seed, len(train_ds)),
                         optim=Optim(opt_func=adamw(), splitter=net.splitter, wd=p.wd), metrics=[accuracy],
                         config=dataclasses.asdict(cfg))
    t0 = time.perf_counter()
    phase = Phase("pretrain", p.epochs, p.lr, sched_kwargs={"pct_start": p.pct_start, "div": p.div})
    metrics = fit_and_save(learn, [phase], lambda final: save_model(
        model, net, dataclasses.asdict(cfg), extra={"normalize": {"mean": mean, "std": std}, "valid": final}))
    secs = time.perf_counter() - t0
    return {"valid_loss": round(metrics["valid_loss"], 5), "accuracy": round(metrics["accuracy"], 5),
            "train_seconds": round(secs, 1), "n_train": len(train_ds), "n_valid": len(valid_ds),
            "n_params": sum(q.numel() for q in net.parameters())}
