"""A training stage's run, start to finish: one fingerprint, the Learner from params, fit, save, finish.

Every training task follows the same sequence, here once::

    runtime.apply(rt)                                        # seeds, threads, DDP group
    learn = make_learner(model, train_dl, valid_dl, loss, rt=rt, dirs=dirs,
                         fingerprint=fingerprint("stage", p, rt.seed, files=(...,)), optim=Optim(...))
    final = fit_and_save(learn, phases, save=lambda final: save_model(...))   # rank 0 saves
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable, Optional, Sequence

from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.train.callbacks import Callback
from dlpipe.train.distributed import is_main
from dlpipe.train.learner import Learner, Optim, RunSettings
from dlpipe.train.phases import Phase, fit_phases


def fingerprint(*parts, files: Sequence[Path] = ()) -> str:
    """Hash of params/metadata (dataclasses as dicts) and input files: a checkpoint resumes only the same run."""
    plain = [dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts]
    h = hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode())
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def make_learner(model, train_dl, valid_dl, loss_func: Callable, *, rt: RuntimeParams, dirs: RunDirs,
                 fingerprint: str, optim: Optim = Optim(), metrics: Sequence[Callable] = (),
                 cbs: Sequence[Callback] = (), checkpoint_every: int = 0, config: Optional[dict] = None) -> Learner:
    """The Learner of a stage: device and seed from ``runtime``, directories from the stage's argv."""
    run = RunSettings(device=rt.device, seed=rt.seed, run_dir=dirs.run_dir, log_dir=dirs.log_dir,
                      fingerprint=fingerprint, checkpoint_every=checkpoint_every, config=config)
    return Learner(model, train_dl, valid_dl, loss_func, optim=optim, metrics=metrics, cbs=cbs, run=run)


def fit_and_save(learn: Learner, phases: Sequence[Phase], save: Callable[[dict], None]) -> dict:
    """Fit ``phases``, validate, ``save(final_metrics)`` on rank 0, then discard the resume checkpoint.

    Returns the final validation metrics (every rank: under DDP they are already averaged).
    """
    fit_phases(learn, phases)
    final = learn.validate()
    if is_main():
        save(final)
    learn.finish()
    return final
