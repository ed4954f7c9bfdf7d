"""Exact resume for the Learner: what a checkpoint holds and where each piece is restored.

The checkpoint (``run_dir/checkpoint.pt``) always holds the latest state. On the first ``fit``
of a re-run script with the same fingerprint:

* model, optimizer, GradScaler, global step and finished phases are loaded at once;
* a finished phase's ``fit`` returns immediately;
* the interrupted phase restarts at its saved (epoch, iter): the loader is re-iterated for that
  epoch (same order, as it is a function of (seed, epoch)) and the first ``iter`` batches skipped;
* RNG states and callback states are restored at the point the interrupted run saved them —
  after skipping, or after ``before_fit`` at an epoch boundary, or at the start of the next
  unfinished phase — so dropout masks and stateful callbacks continue exactly.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from dlpipe.io.checkpoint import (CHECKPOINT_NAME, get_rng_state, load_checkpoint, load_state_strict,
                                  save_checkpoint, set_rng_state)
from dlpipe.train import distributed as D

log = logging.getLogger("dlpipe.train")
VERSION = 1


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of dlpipe's own source files (paths and bytes).

    A checkpoint resumes only the run that wrote it: same fingerprint (params, inputs) *and* same
    code. DVC reruns a stage when the code it imports changes; a checkpoint of the old code (one left
    by a crash, or by a version that did not yet delete finished checkpoints) must then not be
    resumed or replayed into the new run.
    """
    root = Path(__file__).resolve().parents[1]                  # src/dlpipe
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.suffix in (".py", ".yaml") and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@dataclass
class ResumeState:
    phase: Optional[str]       # phase in progress at the checkpoint (None: between phases)
    epoch: int
    iter: int
    pending: Optional[dict]    # {"rng": ..., "callbacks": ...} not yet applied


def _cb_keys(learn) -> list[str]:
    """Stable names for callbacks in checkpoints: class name, with a counter for repeats."""
    seen: dict[str, int] = {}
    keys = []
    for cb in learn.cbs:
        name = type(cb).__name__
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return keys


def save(learn, epoch: Optional[int], it: Optional[int]) -> None:
    """Write the checkpoint (rank 0) at position (phase, epoch, iter); ``epoch=None``: phase finished."""
    if learn.run_dir is None:
        return
    rngs = D.all_gather_object(get_rng_state())     # every rank's RNG, so each resumes its own stream
    if not D.is_main():
        return
    pos = None if epoch is None else {"phase": learn.phase, "epoch": epoch, "iter": it}
    state = {
        "version": VERSION, "fingerprint": learn.fingerprint, "code": code_digest(), "config": learn.config,
        "model": learn.model.state_dict(), "opt": learn.opt.state_dict(), "scaler": learn.scaler.state_dict(),
        "rng": rngs, "pos": pos, "step": learn.step, "finished_phases": list(learn.finished_phases),
        "callbacks": {k: cb.state_dict() for k, cb in zip(_cb_keys(learn), learn.cbs)},
    }
    save_checkpoint(learn.run_dir / CHECKPOINT_NAME, state)


def discard(learn) -> None:
    """Delete the checkpoint (rank 0) once the run it belongs to is complete; no-op without a run_dir."""
    D.barrier()                                     # no rank may still be reading it
    if learn.run_dir is None or not D.is_main():
        return
    (learn.run_dir / CHECKPOINT_NAME).unlink(missing_ok=True)


def _load(learn) -> Optional[ResumeState]:
    """Load a matching checkpoint into ``learn``; None (with a log line) when there is none or it is stale."""
    path = learn.run_dir / CHECKPOINT_NAME
    ck = load_checkpoint(path)
    if ck is None:
        return None
    if ck.get("fingerprint") != learn.fingerprint or ck.get("version") != VERSION:
        log.warning("%s: ignoring checkpoint: fingerprint %r differs from this run's %r; starting fresh",
                    path, ck.get("fingerprint"), learn.fingerprint)
        return None
    if ck.get("code") != code_digest():
        log.warning("%s: ignoring checkpoint: written by other dlpipe code (%s, now %s); starting fresh",
                    path, ck.get("code"), code_digest())
        return None
    load_state_strict(learn.model, ck["model"], str(path))
    try:
        learn.opt.load_state_dict(ck["opt"])
    except ValueError as e:
        raise ValueError(f"{path}: optimizer state does not match this learner's parameter groups: {e}") from None
    learn.scaler.load_state_dict(ck["scaler"])
    learn.step, learn.finished_phases = ck["step"], list(ck["finished_phases"])
    rng = ck["rng"][D.rank()] if D.rank() < len(ck["rng"]) else ck["rng"][0]
    pos = ck["pos"] or {"phase": None, "epoch": 0, "iter": 0}
    where = f"phase '{pos['phase']}' epoch {pos['epoch']} batch {pos['iter']}" if pos["phase"] else "a phase boundary"
    log.warning("%s: resuming at step %d, %s (finished phases: %s)", path, learn.step, where,
                ", ".join(learn.finished_phases) or "none")
    return ResumeState(pos["phase"], pos["epoch"], pos["iter"], {"rng": rng, "callbacks": ck["callbacks"]})


def start_of(learn, phase: str) -> Optional[tuple[int, int]]:
    """Where ``fit(phase=phase)`` starts: (epoch, iter), or None when the phase is already finished."""
    if not learn._resume_checked:
        learn._resume_checked = True
        learn._resume = _load(learn) if learn.run_dir is not None else None
    if phase in learn._phases_seen:
        raise ValueError(f"fit: phase name '{phase}' used twice in one run; phase names must be unique")
    learn._phases_seen.add(phase)
    if phase in learn.finished_phases:
        log.info("phase '%s' finished in the checkpoint: skipped", phase)
        _rewrite_reports(learn)
        return None
    r = learn._resume
    if r is not None and r.phase == phase:
        return r.epoch, r.iter
    if r is not None and r.phase is not None:
        log.warning("checkpoint was in phase '%s' but the script now runs phase '%s': starting it fresh",
                    r.phase, phase)
        r.phase = None
    apply_pending(learn)                           # a fresh phase starts where the last one ended
    return 0, 0


def _rewrite_reports(learn) -> None:
    """Re-create history.tsv/curves.png from the checkpoint (DVC may have deleted them before the rerun)."""
    from dlpipe.train.callbacks import Recorder
    r = learn._resume
    if r is None or r.pending is None:
        return
    for key, cb in zip(_cb_keys(learn), learn.cbs):
        if isinstance(cb, Recorder) and key in r.pending["callbacks"]:
            cb.write_reports(r.pending["callbacks"][key]["rows"], r.pending["callbacks"][key]["steps"])


def apply_pending(learn) -> None:
    """Restore RNG and callback states from the checkpoint, once."""
    r = learn._resume
    if r is None or r.pending is None:
        return
    set_rng_state(r.pending["rng"])
    states = r.pending["callbacks"]
    for key, cb in zip(_cb_keys(learn), learn.cbs):
        if key in states:
            cb.load_state_dict(states[key])
    r.pending = None
