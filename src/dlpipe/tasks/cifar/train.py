"""Darknet on CIFAR-10 with one-cycle (lesson 12): the LR sweep (``lr_find_cifar``) and the run (``train_cifar``).

Inputs are ``decode_cifar``'s arrays; the test split is the validation set of every epoch (as in the
lesson), never used to choose anything during the run: it gives the per-epoch accuracy from which
**time to accuracy** is read (training seconds, validation excluded, until the test accuracy first
reaches each target).

Output of train_cifar: ``model.pt`` (:func:`dlpipe.io.checkpoint.save_model`: the Darknet's state_dict and
config, ``extra.normalize`` = the train images' per-channel mean/std, ``extra.classes``), and in the log
dir history.tsv, curves.png, confusion.png, misclassified.png.
"""
from __future__ import annotations

import dataclasses
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from dlpipe.core import runtime
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.io.checkpoint import save_model
from dlpipe.models.darknet import DarknetConfig, darknet
from dlpipe.plots import confusion, plot_confusion
from dlpipe.tasks.cifar.decode import CLASSES
from dlpipe.tasks.cifar.params import DataParams, LRFindParams, ModelParams, TrainParams
from dlpipe.train import EpochTimer, Optim, Phase, accuracy, fingerprint, fit_and_save, make_learner, make_loader, predict, sgd
from dlpipe.vision.plots import plot_prediction_grid
from dlpipe.vision.transforms import ImageArrayDataset, channel_stats


def load_arrays(src: Path) -> dict[str, np.ndarray]:
    """decode_cifar's arrays: ``train_images`` (n, 32, 32, 3) uint8, ``train_labels`` (n,), same for test."""
    return {f"{s}_{k}": np.load(Path(src) / f"{s}_{k}.npy") for s in ("train", "test") for k in ("images", "labels")}


def channels_last_collate(batch):
    """default_collate, then images in NHWC memory order (same (N, C, H, W) shape): oneDNN's fast path."""
    x, y = default_collate(batch)
    return x.contiguous(memory_format=torch.channels_last), y


def cifar_learner(src: Path, m: ModelParams, d: DataParams, opt: Optim, rt: RuntimeParams, dirs: RunDirs,
                  fp: str, cbs=()):
    """Datasets, loaders, Darknet and Learner; returns ``(learn, arrays, normalize)``."""
    a = load_arrays(src)
    mean, std = channel_stats(a["train_images"])
    train_ds = ImageArrayDataset(a["train_images"], a["train_labels"], 3, mean, std, pad=d.pad, flip=d.flip)
    test_ds = ImageArrayDataset(a["test_images"], a["test_labels"], 3, mean, std)
    collate = channels_last_collate if d.channels_last else None
    net = darknet(DarknetConfig(in_ch=3, nf=m.nf, layers=tuple(m.layers), n_classes=10))
    if d.channels_last:
        net = net.to(memory_format=torch.channels_last)
    loss = partial(F.cross_entropy, label_smoothing=d.label_smoothing)
    learn = make_learner(net, make_loader(train_ds, d.bs, True, rt.seed, drop_single=True, collate_fn=collate),
                         make_loader(test_ds, d.bs * 2, False, rt.seed, collate_fn=collate), loss,
                         rt=rt, dirs=dirs, fingerprint=fp, optim=opt, metrics=[accuracy], cbs=cbs,
                         config=dataclasses.asdict(net.cfg))
    return learn, a, {"mean": mean, "std": std}


def lr_find_cifar(*, src: Path, m: ModelParams, d: DataParams, p: LRFindParams, rt: RuntimeParams,
                  dirs: RunDirs) -> dict:
    """The exponential lr sweep on the training batches; plot = ``log_dir/lr_find.png``."""
    runtime.apply(rt)
    learn, _, _ = cifar_learner(src, m, d, Optim(opt_func=sgd(0.9, nesterov=True)), rt, dirs,
                                fingerprint("lr_find_cifar", m, d, p, rt.seed))
    lr = learn.lr_find(p.start, p.end, p.n, plot=Path(dirs.log_dir) / "lr_find.png")
    r = learn.lr_find_result
    return {"suggestion": float(f"{lr:.4g}"), "steepest": float(f"{r['steepest']:.4g}"), "batches": len(r["lrs"]),
            "min_loss": round(float(min(r["losses"])), 4)}


def time_to_accuracy(epoch_seconds: list[float], accs: list[float], targets: list[float]) -> dict[str, float | None]:
    """Training seconds (cumulative, per epoch) until accuracy first reaches each target; None if never."""
    clock = np.cumsum(epoch_seconds)
    out = {}
    for t in targets:
        hit = [i for i, a in enumerate(accs) if a >= t]
        out[f"{t:.2f}"] = round(float(clock[hit[0]]), 1) if hit else None
    return out


def eval_probs(model: torch.nn.Module, x: torch.Tensor, bs: int, device: str, channels_last: bool,
               flip: bool = False) -> torch.Tensor:
    """Softmax over the normalised test images ``x`` (n, 3, 32, 32); ``flip`` mirrors them first."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    batches = ((x[i:i + bs].flip(-1) if flip else x[i:i + bs]).contiguous(memory_format=fmt) for i in range(0, len(x), bs))
    return predict(model, batches, device).softmax(-1)


def per_class_accuracy(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, float]:
    return {c: round(float((pred[y == i] == i).mean()), 4) for i, c in enumerate(classes) if (y == i).any()}


def most_confident_mistakes(probs: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` wrong predictions with the highest predicted probability."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y)
    return wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:k]


def train_cifar(*, src: Path, model: Path, m: ModelParams, d: DataParams, p: TrainParams, rt: RuntimeParams,
                dirs: RunDirs) -> dict:
    """One-cycle training; metrics, time to accuracy, confusion matrix and mistakes grid."""
    runtime.apply(rt)
    timer = EpochTimer()
    opt = Optim(opt_func=sgd(p.moms[0], nesterov=p.nesterov), wd=p.wd, amp=True)
    learn, a, norm = cifar_learner(src, m, d, opt, rt, dirs, fingerprint("train_cifar", m, d, p, rt.seed), cbs=[timer])
    net = learn.model
    phase = Phase("train", p.epochs, p.lr, sched_kwargs={"pct_start": p.pct_start, "div": p.div,
                                                         "div_final": p.div_final, "moms": tuple(p.moms)})
    t0 = time.perf_counter()
    final = fit_and_save(learn, [phase], lambda final: save_model(
        model, net, dataclasses.asdict(net.cfg), extra={"normalize": norm, "classes": list(CLASSES), "valid": final}))
    train_secs = time.perf_counter() - t0
    x_test = learn.valid_dl.dataset.x
    probs = eval_probs(net, x_test, d.bs * 2, rt.device, d.channels_last)
    y = a["test_labels"]
    metrics = {"accuracy": round(float((probs.argmax(1).numpy() == y).mean()), 4),
               "loss": round(final["valid_loss"], 4)}
    if p.tta:
        probs = (probs + eval_probs(net, x_test, d.bs * 2, rt.device, d.channels_last, flip=True)) / 2
        metrics["accuracy_tta"] = round(float((probs.argmax(1).numpy() == y).mean()), 4)
    probs = probs.numpy()
    pred = probs.argmax(1)
    rows = [r for r in learn.recorder.rows if r["phase"] == "train"]
    epoch_secs = timer.times.get("train", [])
    n_train = len(a["train_labels"])
    metrics.update(
        per_class_accuracy=per_class_accuracy(y, pred, list(CLASSES)),
        time_to_accuracy=time_to_accuracy(epoch_secs, [r["accuracy"] for r in rows], p.time_to),
        epoch_accuracy=[round(r["accuracy"], 4) for r in rows],
        train_seconds=round(train_secs, 1), images_per_s=round(n_train * len(epoch_secs) / max(sum(epoch_secs), 1e-9), 1),
        n_train=n_train, n_test=len(y), n_params=sum(q.numel() for q in net.parameters()),
        jpeg=True)   # the images are JPEG re-encodings: close to, not equal to, the official pixels
    log = Path(dirs.log_dir)
    plot_confusion(confusion(y, pred, len(CLASSES)), list(CLASSES), log / "confusion.png",
                   title=f"CIFAR-10 test ({len(y)} JPEG images), accuracy {metrics.get('accuracy_tta', metrics['accuracy']):.3f}")
    worst = most_confident_mistakes(probs, y, 24)
    plot_prediction_grid([a["test_images"][i].transpose(2, 0, 1) / 255.0 for i in worst],
                         [CLASSES[pred[i]] for i in worst], [CLASSES[y[i]] for i in worst], log / "misclassified.png",
                         title="most confident mistakes")
    return metrics
