"""Learning-rate finder (Smith 2015; fastai's ``lr_find``): an exponential lr sweep over mini-batches.

The sweep trains from ``start`` to ``end`` over at most ``n`` batches, tracking a debiased moving
average of the loss, and stops once it exceeds 4x its minimum. Afterwards model, optimizer,
GradScaler, RNG and callback states are put back exactly as before (nothing is disturbed).

Suggestion returned: **the lr at the minimum of the smoothed loss, divided by 10** (the 2018
course's rule: an order of magnitude before the loss bottoms out, where it still falls clearly).
It is robust to noisy curves; the steepest-descent point is also computed (slope of the smoothed
loss against log10(lr) over a window of ~1/10 of the sweep, up to the minimum) and stored as
``learn.lr_find_result["steepest"]``, but on noisy curves it often lands in the flat start.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm.auto import tqdm

from dlpipe.io.atomic import atomic_path
from dlpipe.io.checkpoint import get_rng_state, set_rng_state
from dlpipe.train import distributed as D
from dlpipe.train.callbacks import ProgressCallback, Recorder
from dlpipe.train.data import set_epoch


def _snapshot(learn) -> dict:
    return {"model": copy.deepcopy(learn.model.state_dict()), "opt": copy.deepcopy(learn.opt.state_dict()),
            "scaler": copy.deepcopy(learn.scaler.state_dict()), "rng": get_rng_state(),
            "cbs": [copy.deepcopy(cb.state_dict()) for cb in learn.cbs], "cb_list": learn.cbs,
            "attrs": {k: getattr(learn, k) for k in ("epoch", "iter", "n_iter", "skip", "phase", "n_epochs", "training")}}


def _restore(learn, snap: dict) -> None:
    learn.model.load_state_dict(snap["model"])
    learn.opt.load_state_dict(snap["opt"])
    learn.scaler.load_state_dict(snap["scaler"])
    learn.cbs = snap["cb_list"]
    for cb, state in zip(learn.cbs, snap["cbs"]):
        cb.load_state_dict(state)
    for k, v in snap["attrs"].items():
        setattr(learn, k, v)
    set_rng_state(snap["rng"])


def _batches(learn):
    """Training batches, cycling over epochs 0, 1, ... (so short loaders still give ``n`` batches)."""
    epoch = 0
    while True:
        set_epoch(learn.train_dl, epoch)
        yield from learn.train_dl
        epoch += 1


def _sweep(learn, lrs: np.ndarray, beta: float, stop_factor: float) -> tuple[list[float], list[float]]:
    """Train one batch per lr; return (lrs tried, smoothed losses)."""
    from dlpipe.train.learner import _as_tuple, to_device
    tried, smooth, avg, best = [], [], 0.0, math.inf
    batches = _batches(learn)
    for i, lr in enumerate(tqdm(lrs, desc="lr_find", leave=False, mininterval=1.0, disable=not D.is_main())):
        for g in learn.opt.param_groups:
            g["lr"] = float(lr)
        learn.iter = i
        learn.xb, learn.yb = (_as_tuple(to_device(b, learn.device)) for b in next(batches))
        learn("before_batch")
        try:
            learn._train_batch()
        except FloatingPointError:                 # diverged for good
            break
        learn("after_batch")
        avg = beta * avg + (1 - beta) * float(learn.loss.detach())
        s = avg / (1 - beta ** (i + 1))
        tried.append(float(lr))
        smooth.append(s)
        best = min(best, s)
        if s > stop_factor * best:
            break
    return tried, smooth


def suggest(lrs: list[float], losses: list[float], window: float = 0.1) -> tuple[float, float]:
    """(lr at the minimum / 10, steepest-descent lr) of a smoothed loss curve.

    The slope at point i is taken between points i-w and i+w (w = ``window`` x the number of
    points, at least 1) so that batch-to-batch noise does not masquerade as a steep fall.
    """
    i_min = int(np.argmin(losses))
    w = max(1, int(len(losses) * window))
    x, y = np.log10(lrs), np.asarray(losses)
    idx = list(range(w, i_min + 1 - w))
    if not idx:
        return lrs[i_min] / 10, lrs[i_min] / 10
    slopes = [(y[i + w] - y[i - w]) / (x[i + w] - x[i - w]) for i in idx]
    return lrs[i_min] / 10, float(lrs[idx[int(np.argmin(slopes))]])


def lr_find(learn, start: float = 1e-7, end: float = 10.0, n: int = 100, beta: float = 0.98,
            stop_factor: float = 4.0, plot: Optional[Path] = None) -> float:
    """Sweep lr exponentially from ``start`` to ``end`` over ``n`` batches; return the suggested lr.

    Args:
        learn: the Learner (its callbacks run, except the Recorder and progress bar).
        start, end, n: sweep range and number of batches.
        beta: smoothing of the loss (debiased EMA).
        stop_factor: stop when the smoothed loss exceeds ``stop_factor`` x its minimum.
        plot: PNG path; default ``learn.log_dir / "lr_find.png"`` (no plot without either).
    Returns:
        The suggested lr: lr at the loss minimum / 10. Details in ``learn.lr_find_result``
        (``lrs``, ``losses``, ``suggestion``, ``steepest``).
    """
    lrs = start * (end / start) ** (np.arange(n) / max(n - 1, 1))
    snap = _snapshot(learn)
    learn.cbs = [c for c in learn.cbs if not isinstance(c, (Recorder, ProgressCallback))]
    learn.phase, learn.n_epochs, learn.epoch, learn.training = "lr_find", 1, 0, True
    learn.model.train()
    try:
        learn("before_epoch")
        tried, losses = _sweep(learn, lrs, beta, stop_factor)
        learn("after_epoch")
    finally:
        _restore(learn, snap)
    if len(tried) < 3:
        raise RuntimeError(f"lr_find: only {len(tried)} batch(es) before divergence; lower start (={start:g})")
    lr, steep = suggest(tried, losses)
    learn.lr_find_result = {"lrs": tried, "losses": losses, "suggestion": lr, "steepest": steep}
    plot = plot or (learn.log_dir / "lr_find.png" if learn.log_dir else None)
    if plot is not None and D.is_main():
        _plot(Path(plot), tried, losses, lr, steep)
    return lr


def _plot(path: Path, lrs: list[float], losses: list[float], lr: float, steep: float) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs, losses)
    ax.axvline(lr, color="red", ls="--", label=f"suggestion (min/10) {lr:.2g}")
    ax.axvline(steep, color="grey", ls=":", label=f"steepest {steep:.2g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="loss (smoothed)", title="lr_find")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
