"""Learning-rate finder (Smith 2015; fastai's ``lr_find``): an exponential lr sweep over mini-batches.

The sweep is an :class:`LRFinder` callback over ``Learner.fit`` (as in fastai v2): it trains from
``start`` to ``end`` over at most ``n`` batches, tracking a debiased moving average of the loss, and
stops once it exceeds 4x its minimum. Afterwards model, optimizer, GradScaler, RNG and callback
states are put back exactly as before (nothing is disturbed).

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

from dlpipe.core.atomic import atomic_path
from dlpipe.io.checkpoint import get_rng_state, set_rng_state
from dlpipe.train import distributed as D
from dlpipe.train.callbacks import Callback, CancelFit, ProgressCallback, Recorder


class LRFinder(Callback):
    """Exponential lr sweep over ``fit`` (fastai v2's design): one batch per lr, stop on divergence.

    Overrides every group's lr after the schedule set it, skips validation, and puts model,
    optimizer, GradScaler, RNG, callback states and the learner's counters back after the fit.
    """

    order = -10                                     # before task callbacks see the batch

    def __init__(self, lrs: np.ndarray, beta: float = 0.98, stop_factor: float = 4.0):
        self.lrs, self.beta, self.stop_factor = lrs, beta, stop_factor
        self.tried: list[float] = []
        self.losses: list[float] = []

    def before_fit(self):
        learn = self.learn
        self.snap = {"model": copy.deepcopy(learn.model.state_dict()), "opt": copy.deepcopy(learn.opt.state_dict()),
                     "scaler": copy.deepcopy(learn.scaler.state_dict()), "rng": get_rng_state(),
                     "cbs": [copy.deepcopy(cb.state_dict()) for cb in learn.cbs],
                     "attrs": {k: copy.copy(getattr(learn, k)) for k in _ATTRS}}
        self.valid_dl, learn.valid_dl = learn.valid_dl, None        # a sweep has no validation
        self.avg, self.best, self.i = 0.0, math.inf, 0
        self.bar = tqdm(total=len(self.lrs), desc="lr_find", leave=False, mininterval=1.0, disable=not D.is_main())

    def before_batch(self):
        if self.learn.training:
            for g in self.learn.opt.param_groups:
                g["lr"] = float(self.lrs[self.i])

    def after_loss(self):
        if self.learn.training and not math.isfinite(float(self.learn.loss.detach())):
            raise CancelFit                         # diverged for good: this lr is not recorded

    def after_batch(self):
        learn = self.learn
        if not learn.training:
            return
        self.avg = self.beta * self.avg + (1 - self.beta) * learn.loss_value
        s = self.avg / (1 - self.beta ** (self.i + 1))
        self.tried.append(float(self.lrs[self.i]))
        self.losses.append(s)
        self.best = min(self.best, s)
        self.i += 1
        self.bar.update(1)
        if self.i == len(self.lrs) or s > self.stop_factor * self.best:
            raise CancelFit

    def after_fit(self):
        learn, snap = self.learn, self.snap
        self.bar.close()
        learn.valid_dl = self.valid_dl
        learn.model.load_state_dict(snap["model"])
        learn.opt.load_state_dict(snap["opt"])
        learn.scaler.load_state_dict(snap["scaler"])
        for cb, state in zip(learn.cbs, snap["cbs"]):
            cb.load_state_dict(state)
        for k, v in snap["attrs"].items():
            setattr(learn, k, v)
        set_rng_state(snap["rng"])


_ATTRS = ("step", "epoch", "iter", "n_iter", "skip", "phase", "n_epochs", "training", "finished_phases",
          "valid_metrics", "_n_fits")


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
        learn: the Learner (its callbacks run, except the Recorder and progress bar; no checkpoint
            is read or written).
        start, end, n: sweep range and number of batches (epochs repeat when the loader is shorter).
        beta: smoothing of the loss (debiased EMA).
        stop_factor: stop when the smoothed loss exceeds ``stop_factor`` x its minimum.
        plot: PNG path; default ``learn.log_dir / "lr_find.png"`` (no plot without either).
    Returns:
        The suggested lr: lr at the loss minimum / 10. Details in ``learn.lr_find_result``
        (``lrs``, ``losses``, ``suggestion``, ``steepest``).
    """
    lrs = start * (end / start) ** (np.arange(n) / max(n - 1, 1))
    finder = LRFinder(lrs, beta, stop_factor)
    with learn.removed_cbs(Recorder, ProgressCallback), learn.resume.pause():
        learn.fit(-(-n // max(len(learn.train_dl), 1)), lr=start, schedule="const", phase="lr_find", cbs=[finder])
    tried, losses = finder.tried, finder.losses
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
