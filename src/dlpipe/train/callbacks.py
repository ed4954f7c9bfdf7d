"""Callbacks: the base class, the two every Learner carries (Recorder, ProgressCallback), EpochTimer.

A callback implements any of the learner's events as methods (``before_fit``, ``before_epoch``,
``before_batch``, ``after_pred``, ``after_loss``, ``before_step``, ``after_step``, ``after_batch``,
``after_epoch``, ``after_fit``, ``before_validate``, ``after_validate``) and reads or replaces the
learner's attributes through ``self.learn``. Lower ``order`` runs first. A callback whose state
must survive a resume implements ``state_dict()`` / ``load_state_dict()``; the learner stores it
in checkpoints and restores it exactly where the interrupted run stopped (after ``before_fit``/
``before_epoch`` of the resumed run, so those events cannot clobber it).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from typing import Optional

from tqdm.auto import tqdm

from dlpipe.train import distributed as D
from dlpipe.train.report import write_curves, write_history


class Callback:
    """Base class: override the events you need; ``self.learn`` is set by the Learner."""

    order = 0
    learn = None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class CancelFit(Exception):
    """Raise in a callback to end the current ``fit`` early (after_fit still runs, phase finishes)."""


class Recorder(Callback):
    """Per-step losses/lrs and per-epoch rows; writes ``log_dir/history.tsv`` and ``curves.png`` (rank 0)."""

    order = 50

    def __init__(self, log_dir: Optional[Path], metric_names: list[str]):
        self.log_dir = Path(log_dir) if log_dir else None
        self.metric_names = list(metric_names)
        self.rows: list[dict] = []
        self.steps: list[tuple[int, float, float]] = []   # (step, loss, lr of the last group)
        self._sum, self._n, self._t0 = 0.0, 0, time.time()

    @property
    def columns(self) -> list[str]:
        return ["phase", "epoch", "step", "train_loss", "valid_loss", *self.metric_names, "lr", "seconds"]

    def before_epoch(self):
        self._sum, self._n, self._t0 = 0.0, 0, time.time()

    def after_batch(self):
        learn = self.learn
        if not learn.training:
            return
        loss = learn.loss_value
        bs = learn.batch_size
        self._sum, self._n = self._sum + loss * bs, self._n + bs
        self.steps.append((learn.step, loss, learn.opt.param_groups[-1]["lr"]))

    def after_epoch(self):
        learn = self.learn
        total, n = D.all_reduce_sum([self._sum, self._n], learn.device)
        row = {"phase": learn.phase, "epoch": learn.epoch, "step": learn.step,
               "train_loss": total / max(n, 1), "valid_loss": math.nan}
        row.update({k: math.nan for k in self.metric_names})
        row.update(learn.valid_metrics)
        row.update(lr=learn.opt.param_groups[-1]["lr"], seconds=round(time.time() - self._t0, 3))
        self.rows.append(row)
        self.write_reports(self.rows, self.steps)

    def write_reports(self, rows: list[dict], steps: list[tuple]) -> None:
        """(Re)write history.tsv and curves.png from ``rows``/``steps`` (rank 0, if there is a log_dir)."""
        if self.log_dir is not None and D.is_main() and rows:
            write_history(self.log_dir / "history.tsv", rows, self.columns)
            write_curves(self.log_dir / "curves.png", rows, steps, self.metric_names)

    def state_dict(self) -> dict:
        return {"rows": self.rows, "steps": self.steps, "sum": self._sum, "n": self._n,
                "elapsed": time.time() - self._t0}

    def load_state_dict(self, state: dict) -> None:
        self.rows, self.steps = list(state["rows"]), list(state["steps"])
        self._sum, self._n, self._t0 = state["sum"], state["n"], time.time() - state["elapsed"]


class ProgressCallback(Callback):
    """A tqdm bar per epoch (loss, ETA; ``leave=False``) and one printed line per epoch (rank 0)."""

    order = 60

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None

    def before_epoch(self):
        learn = self.learn
        self._smooth, self._k = 0.0, 0
        self.bar = tqdm(total=learn.n_iter, initial=learn.skip, leave=False, mininterval=1.0, dynamic_ncols=True,
                        desc=f"{learn.phase} {learn.epoch + 1}/{learn.n_epochs}",
                        disable=not (self.enabled and D.is_main()))

    def after_batch(self):
        if not self.learn.training or self.bar is None:
            return
        self._k += 1   # debiased exponential moving average of the loss, as fastai shows it
        self._smooth = 0.98 * self._smooth + 0.02 * self.learn.loss_value
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{self._smooth / (1 - 0.98 ** self._k):.4f}", refresh=False)

    def after_epoch(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        rec = self.learn.recorder
        if self.enabled and D.is_main() and rec is not None and rec.rows:
            row = rec.rows[-1]
            tqdm.write("  ".join(f"{k} {_fmt(row[k])}" for k in rec.columns))

    def after_fit(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fmt(v) -> str:
    return f"{v:.5g}" if isinstance(v, float) else str(v)


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
