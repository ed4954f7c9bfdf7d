"""Vision task: pretrain the Darknet backbone on MNIST digits with one-cycle (stage ``pretrain_backbone``).

Output: ``backbone.pt`` from :func:`dlpipe.io.checkpoint.save_model`: state_dict, the DarknetConfig, and
``extra["normalize"]`` (the per-channel mean/std of the training digits) so precompute feeds it the same inputs.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dlpipe.io.checkpoint import save_model
from dlpipe.models.darknet import DarknetConfig, darknet
from dlpipe import runtime
from dlpipe.runtime import RuntimeParams
from dlpipe.train import Learner, accuracy, adamw, is_main, make_loader
from dlpipe.vision.features import BackboneParams
from dlpipe.vision.transforms import ImageArrayDataset, channel_stats


@dataclass(frozen=True)
class PretrainParams:
    epochs: int = field(metadata=dict(ge=1))
    bs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    wd: float = field(metadata=dict(ge=0.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    div: float = field(metadata=dict(gt=0.0))
    pad: int = field(metadata=dict(ge=0))                            # random-crop padding, px


def pretrain_backbone(src: Path, model_path: Path, log_dir: Path, run_dir: Path | None, bb: BackboneParams,
                      p: PretrainParams, rt: RuntimeParams) -> dict:
    """Train Darknet on the MNIST digit split with one-cycle; save it with its input normalisation."""
    src = Path(src)
    runtime.apply(rt)
    xs = {s: np.load(src / f"{s}_images.npy") for s in ("train", "valid")}
    ys = {s: np.load(src / f"{s}_labels.npy") for s in ("train", "valid")}
    mean, std = channel_stats(xs["train"])
    train_ds = ImageArrayDataset(xs["train"], ys["train"], bb.in_ch, mean, std, pad=p.pad)
    valid_ds = ImageArrayDataset(xs["valid"], ys["valid"], bb.in_ch, mean, std)
    cfg = DarknetConfig(in_ch=bb.in_ch, nf=bb.nf, layers=tuple(bb.layers), n_classes=int(ys["train"].max()) + 1)
    model = darknet(cfg)
    fingerprint = json.dumps([dataclasses.asdict(bb), dataclasses.asdict(p), rt.seed, len(train_ds)])
    learn = Learner(model, make_loader(train_ds, p.bs, True, rt.seed, drop_single=True),
                    make_loader(valid_ds, p.bs * 2, False, rt.seed),
                    torch.nn.functional.cross_entropy, opt_func=adamw(), splitter=model.splitter, metrics=[accuracy],
                    wd=p.wd, device=rt.device, seed=rt.seed, run_dir=run_dir, log_dir=log_dir,
                    fingerprint=fingerprint, config=dataclasses.asdict(cfg))
    t0 = time.perf_counter()
    learn.fit(p.epochs, lr=p.lr, schedule="one_cycle", phase="pretrain", pct_start=p.pct_start, div=p.div)
    secs = time.perf_counter() - t0
    metrics = learn.validate()
    if is_main():
        save_model(model_path, model, dataclasses.asdict(cfg), extra={"normalize": {"mean": mean, "std": std},
                                                                     "valid": metrics})
    learn.finish()
    return {"valid_loss": round(metrics["valid_loss"], 5), "accuracy": round(metrics["accuracy"], 5),
            "train_seconds": round(secs, 1), "n_train": len(train_ds), "n_valid": len(valid_ds),
            "n_params": sum(q.numel() for q in model.parameters())}
