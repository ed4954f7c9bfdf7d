"""The one training loop (fastai v2's Learner idea, nanoGPT's visible step order).

    fit(phase) ── before_fit
      └ epoch ─── set_epoch(epoch), before_epoch
          └ batch ─ set lr/mom from the schedule, before_batch
                    zero_grad → forward (after_pred) → loss (after_loss) → backward
                    → before_step → clip → weight decay → step (after_step) → after_batch
                    → checkpoint every `checkpoint_every` steps
        validate (before_validate … after_validate), after_epoch, checkpoint
      after_fit, checkpoint (phase finished)

Everything task-specific (BPTT hidden state, AR/TAR, teacher forcing, gradual unfreezing) is a
callback. Resume: see :mod:`dlpipe.train.resume`. Construction groups its settings::

    Learner(model, train_dl, valid_dl, loss_func,
            optim=Optim(opt_func=adamw(), splitter=model.splitter, wd=0.01, clip=0.4),
            metrics=[accuracy], cbs=[...], run=RunSettings(device="auto", seed=42, run_dir=..., log_dir=...))

(``dlpipe.train.run.make_learner`` fills ``run`` from a stage's runtime params and directories.)
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from dlpipe.core.runtime import pick_device
from dlpipe.train import distributed as D
from dlpipe.train.resume import Resume
from dlpipe.train.callbacks import Callback, CancelFit, ProgressCallback, Recorder
from dlpipe.train.data import set_epoch
from dlpipe.train.param_groups import (LR, OptFactory, adamw, check_splitter, default_splitter, freeze_to,
                                       lr_per_group, set_mom)
from dlpipe.train.schedules import make_schedule


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def to_device(x, device: torch.device):
    """Move a tensor or a (nested) tuple/list of tensors to ``device``."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, (tuple, list)):
        return type(x)(to_device(v, device) for v in x)
    return x


@dataclass(frozen=True)
class Optim:
    """How parameters are updated."""
    opt_func: Optional[OptFactory] = None     # param groups -> Optimizer (default: adamw())
    splitter: Optional[Callable] = None       # model -> layer groups, input side first (default: one group)
    wd: float = 0.0                           # decoupled weight decay, p *= 1 - lr*wd
    clip: Optional[float] = None              # gradient-norm clip
    amp: bool = False                         # mixed precision; CUDA only, ignored on CPU
    train_bn: bool = True                     # BatchNorm stays trainable in frozen groups


@dataclass(frozen=True)
class RunSettings:
    """Where a run executes and keeps its state."""
    device: str = "auto"                      # auto = CUDA when present
    seed: int = 0
    run_dir: Optional[Path] = None            # resume checkpoints (not a DVC output)
    log_dir: Optional[Path] = None            # history.tsv + curves.png
    fingerprint: str = ""                     # a checkpoint resumes only a run with the same one
    checkpoint_every: int = 0                 # steps between mid-epoch checkpoints (0: epochs only)
    config: Optional[dict] = None             # stored in checkpoints (the model's shape)
    progress: bool = True                     # tqdm bars and one line per epoch


class Learner:
    """Model + data + loss + optimizer + callbacks; see docs/DESIGN.md "Training engine" for the contract."""

    def __init__(self, model: nn.Module, train_dl, valid_dl, loss_func: Callable, *, optim: Optim = Optim(),
                 metrics: Sequence[Callable] = (), cbs: Sequence[Callback] = (), run: RunSettings = RunSettings()):
        self.device = D.local_device(pick_device(run.device))
        self.model = model.to(self.device)
        self.model_ = self.model                           # what forward calls: the DDP wrapper inside fit
        self.train_dl, self.valid_dl, self.loss_func = train_dl, valid_dl, loss_func
        self.groups = (optim.splitter or default_splitter)(self.model)
        check_splitter(self.model, self.groups)
        self.opt = (optim.opt_func or adamw())([{"params": ps, "lr": 1e-3, "base_lr": 1e-3} for ps in self.groups])
        self.metrics = list(metrics)
        self.wd, self.clip, self.train_bn = optim.wd, optim.clip, optim.train_bn
        self.seed, self.checkpoint_every, self.config = run.seed, run.checkpoint_every, dict(run.config or {})
        self.amp = bool(optim.amp) and self.device.type == "cuda"   # AMP only on CUDA; ignored on CPU
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.log_dir = Path(run.log_dir) if run.log_dir else None
        self.resume = Resume(run.run_dir, run.fingerprint)
        self.cbs: list[Callback] = []
        self.add_cbs([*cbs, Recorder(self.log_dir, self.metric_names), ProgressCallback(run.progress)])
        self.step, self.epoch, self.iter, self.n_iter, self.skip = 0, 0, 0, 0, 0
        self.phase, self.n_epochs, self.training = None, 0, False
        self.valid_metrics: dict = {}
        self.finished_phases: list[str] = []
        self._n_fits = 0

    @property
    def run_dir(self) -> Optional[Path]:
        return self.resume.run_dir

    @property
    def fingerprint(self) -> str:
        return self.resume.fingerprint

    @property
    def recorder(self) -> Optional[Recorder]:
        """The Recorder (per-epoch rows, per-step losses), or None while the LR finder has it removed."""
        return next((c for c in self.cbs if isinstance(c, Recorder)), None)

    # ---- callbacks -------------------------------------------------------------------------------
    @property
    def metric_names(self) -> list[str]:
        return [getattr(m, "__name__", type(m).__name__) for m in self.metrics]

    def add_cbs(self, cbs: Sequence[Callback]) -> None:
        for cb in cbs:
            cb.learn = self
        self.cbs = sorted([*self.cbs, *cbs], key=lambda c: c.order)

    @contextlib.contextmanager
    def removed_cbs(self, *types: type):
        """Callbacks of these types leave for the duration of the block (the LR finder: no Recorder)."""
        kept = self.cbs
        self.cbs = [c for c in kept if not isinstance(c, types)]
        try:
            yield
        finally:
            self.cbs = kept

    def __call__(self, event: str) -> None:
        for cb in self.cbs:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn()

    # ---- parameter groups ------------------------------------------------------------------------
    def freeze_to(self, n: int) -> None:
        """Freeze parameter groups before ``n`` (negative: from the end); BN stays trainable if ``train_bn``."""
        freeze_to(self.model, self.groups, n, self.train_bn)

    def freeze(self) -> None:
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        self.freeze_to(0)

    # ---- fit ---------------------------------------------------------------------------------
    def fit(self, n_epochs: int, lr: LR, schedule: str = "one_cycle", phase: Optional[str] = None,
            cbs: Sequence[Callback] = (), **sched_kwargs) -> "Learner":
        """Train ``n_epochs`` with ``lr`` (float, ``slice(lo, hi)`` or one per group) under ``schedule``.

        ``phase`` names this fit for resume (default ``fit0``, ``fit1``, ... by call order). A phase
        the checkpoint marks finished returns at once; the interrupted phase continues exactly.
        ``cbs`` join for this fit only.
        """
        phase = phase or f"fit{self._n_fits}"
        self._n_fits += 1
        start = self.resume.start_of(self, phase)          # None: phase already finished
        if start is None:
            return self
        self.phase, self.n_epochs = phase, n_epochs
        self.sched = make_schedule(schedule, n_epochs, **sched_kwargs)
        for g, base in zip(self.opt.param_groups, lr_per_group(lr, len(self.groups))):
            g["base_lr"] = base
        self.model_ = D.wrap_ddp(self.model, self.device)
        kept = self.cbs
        self.add_cbs(cbs)
        try:
            self._fit_epochs(*start)
        finally:
            self.model_, self.cbs = self.model, kept
        return self

    def finish(self) -> None:
        """The run is complete (its outputs are saved): remove the resume checkpoint.

        A checkpoint exists to continue an *interrupted* run. Kept after success, it would make the
        next run with the same fingerprint return at once from its finished phases, and DVC reruns a
        stage exactly when an input the fingerprint cannot see changed (the code it imports, an input
        file): that run must train, not replay the old result.
        """
        self.resume.discard()

    def _fit_epochs(self, start_epoch: int, start_iter: int) -> None:
        try:
            self("before_fit")
            if start_iter == 0:
                self.resume.apply_pending(self)            # RNG/callback state as at the checkpoint
            for self.epoch in range(start_epoch, self.n_epochs):
                self._train_epoch(start_iter if self.epoch == start_epoch else 0)
                self.valid_metrics = self.validate() if self.valid_dl is not None else {}
                self("after_epoch")
                self.resume.save(self, self.epoch + 1, 0)
        except CancelFit:
            pass
        self.training = False                              # a validate() after fit is a standalone one
        self.finished_phases.append(self.phase)
        self("after_fit")
        self.resume.save(self, None, None)

    def _train_epoch(self, skip: int) -> None:
        self.training, self.skip = True, skip
        self.model.train()
        set_epoch(self.train_dl, self.epoch)
        self.n_iter = len(self.train_dl)
        self("before_epoch")
        for self.iter, batch in enumerate(self.train_dl):
            if self.iter < skip:                           # resume: batches this epoch already did
                if self.iter == skip - 1:
                    self.resume.apply_pending(self)
                continue
            self._set_hypers()
            self.xb, self.yb = (_as_tuple(to_device(b, self.device)) for b in batch)
            self("before_batch")
            self._train_batch()
            self("after_batch")
            self.step += 1
            if self.checkpoint_every and self.step % self.checkpoint_every == 0 and self.iter + 1 < self.n_iter:
                self.resume.save(self, self.epoch, self.iter + 1)

    def _set_hypers(self) -> None:
        """Every group's lr = its base lr x the schedule at this point of the phase (and momentum)."""
        pct = (self.epoch * self.n_iter + self.iter) / (self.n_epochs * self.n_iter)
        mult, mom = self.sched(pct)
        for g in self.opt.param_groups:
            g["lr"] = g["base_lr"] * mult
            if mom is not None:
                set_mom(g, mom)

    def _train_batch(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        with self._autocast():
            self.pred = self.model_(*self.xb)
            self("after_pred")
            self.loss = self.loss_func(self.pred, *self.yb)
            self("after_loss")
        self._check_finite()
        self.scaler.scale(self.loss).backward()
        self.scaler.unscale_(self.opt)                     # callbacks and clipping see true gradients
        self("before_step")
        if self.clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self._decay_weights()
        self.scaler.step(self.opt)
        self.scaler.update()
        self("after_step")

    @torch.no_grad()
    def _decay_weights(self) -> None:
        """Decoupled weight decay, ``p *= 1 - lr*wd``, only on parameters that got a gradient."""
        if not self.wd:
            return
        for g in self.opt.param_groups:
            ps = [p for p in g["params"] if p.grad is not None]
            if ps:
                torch._foreach_mul_(ps, 1 - g["lr"] * self.wd)

    def _check_finite(self) -> None:
        """Fail fast; keeps ``loss_value`` (a float) so callbacks need no second device sync."""
        self.loss_value = float(self.loss.detach())
        if not math.isfinite(self.loss_value):
            raise FloatingPointError(f"non-finite loss {self.loss_value:g} at epoch {self.epoch}, "
                                     f"step {self.step} (phase '{self.phase}')")

    def _autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)

    @property
    def batch_size(self) -> int:
        """Items in the current batch (first dim of the first target, else of the first input)."""
        first = (self.yb or self.xb)[0]
        return int(first.shape[0]) if first.dim() else 1

    # ---- evaluation ---------------------------------------------------------------------------
    def _eval_batches(self, dl):
        """Yield after each eval batch with ``xb, yb, pred, loss`` set (callbacks see training=False)."""
        was_training, self.training = self.model.training, False
        self.model.eval()
        try:
            with torch.no_grad(), self._autocast():
                for self.iter, batch in enumerate(dl):
                    self.xb, self.yb = (_as_tuple(to_device(b, self.device)) for b in batch)
                    self("before_batch")
                    self.pred = self.model(*self.xb)
                    self("after_pred")
                    self.loss = self.loss_func(self.pred, *self.yb)
                    self("after_loss")
                    yield
                    self("after_batch")
        finally:
            self.model.train(was_training)

    def validate(self, dl=None) -> dict:
        """Mean loss and metrics over ``dl`` (default the validation loader), weighted by batch size
        and averaged across DDP ranks: ``{"valid_loss": ..., <metric name>: ...}``."""
        dl = self.valid_dl if dl is None else dl
        self("before_validate")
        sums, n = [0.0] * (1 + len(self.metrics)), 0
        for _ in self._eval_batches(dl):
            bs = self.batch_size
            vals = [self.loss] + [m(self.pred, *self.yb) for m in self.metrics]
            sums = [s + float(v) * bs for s, v in zip(sums, vals)]
            n += bs
        *sums, n = D.all_reduce_sum([*sums, n], self.device)
        out = {k: (s / n if n else math.nan) for k, s in zip(["valid_loss", *self.metric_names], sums)}
        self.valid_metrics = out
        self("after_validate")
        return out

    def get_preds(self, dl=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions (after callbacks' ``after_pred``) and first targets over ``dl``, on CPU, in order.
        Under DDP each rank returns its own shard."""
        dl = self.valid_dl if dl is None else dl
        preds, targets = [], []
        for _ in self._eval_batches(dl):
            preds.append(self.pred.detach().float().cpu())
            targets.append(self.yb[0].detach().cpu())
        return torch.cat(preds), torch.cat(targets)

    def lr_find(self, start: float = 1e-7, end: float = 10.0, n: int = 100, **kwargs) -> float:
        """Exponential LR sweep (a callback over ``fit``); see :func:`dlpipe.train.lr_find.lr_find`."""
        from dlpipe.train.lr_find import lr_find
        return lr_find(self, start, end, n, **kwargs)
