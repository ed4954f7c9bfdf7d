"""Exact resume for the Learner: what a checkpoint holds and where each piece is restored.

Each Learner owns one :class:`Resume`. The checkpoint (``run_dir/checkpoint.pt``) always holds
the latest state. On the first ``fit`` of a re-run script with the same fingerprint:

* model, optimizer, GradScaler, global step and finished phases are loaded at once;
* a finished phase's ``fit`` returns immediately;
* the interrupted phase restarts at its saved (epoch, iter): the loader is re-iterated for that
  epoch (same order, as it is a function of (seed, epoch)) and the first ``iter`` batches skipped;
* RNG states and callback states are restored at the point the interrupted run saved them —
  after skipping, or after ``before_fit`` at an epoch boundary, or at the start of the next
  unfinished phase — so dropout masks and stateful callbacks continue exactly.
"""
from __future__ import annotations

import contextlib
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
class Position:
    phase: Optional[str]       # phase in progress at the checkpoint (None: between phases)
    epoch: int
    iter: int
    pending: Optional[dict]    # {"rng": ..., "callbacks": ...} not yet applied


def callback_keys(cbs) -> list[str]:
    """Stable names for callbacks in checkpoints: class name, with a counter for repeats."""
    seen: dict[str, int] = {}
    keys = []
    for cb in cbs:
        name = type(cb).__name__
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return keys


class Resume:
    """One run's checkpoint: written after epochs and phases, read back by the next run of the script.

    ``run_dir`` None: nothing is saved or loaded (phase names are still checked for uniqueness).
    """

    def __init__(self, run_dir: Optional[Path], fingerprint: str):
        self.run_dir, self.fingerprint = (Path(run_dir) if run_dir else None), fingerprint
        self.pos: Optional[Position] = None
        self.checked, self.paused = False, False
        self.phases_seen: set[str] = set()

    @property
    def path(self) -> Optional[Path]:
        return self.run_dir / CHECKPOINT_NAME if self.run_dir else None

    @contextlib.contextmanager
    def pause(self):
        """No checkpoint is read, written or applied inside (the LR finder's sweep is not part of the run)."""
        was, self.paused = self.paused, True
        try:
            yield
        finally:
            self.paused = was

    def start_of(self, learn, phase: str) -> Optional[tuple[int, int]]:
        """Where ``fit(phase=phase)`` starts: (epoch, iter), or None when the phase is already finished."""
        if self.paused:
            return 0, 0
        if not self.checked:
            self.checked = True
            self.pos = self._load(learn) if self.run_dir is not None else None
        if phase in self.phases_seen:
            raise ValueError(f"fit: phase name '{phase}' used twice in one run; phase names must be unique")
        self.phases_seen.add(phase)
        if phase in learn.finished_phases:
            log.info("phase '%s' finished in the checkpoint: skipped", phase)
            self._rewrite_reports(learn)
            return None
        r = self.pos
        if r is not None and r.phase == phase:
            return r.epoch, r.iter
        if r is not None and r.phase is not None:
            log.warning("checkpoint was in phase '%s' but the script now runs phase '%s': starting it fresh",
                        r.phase, phase)
            r.phase = None
        self.apply_pending(learn)                      # a fresh phase starts where the last one ended
        return 0, 0

    def save(self, learn, epoch: Optional[int], it: Optional[int]) -> None:
        """Write the checkpoint (rank 0) at position (phase, epoch, iter); ``epoch=None``: phase finished."""
        if self.run_dir is None or self.paused:
            return
        rngs = D.all_gather_object(get_rng_state())     # every rank's RNG, so each resumes its own stream
        if not D.is_main():
            return
        pos = None if epoch is None else {"phase": learn.phase, "epoch": epoch, "iter": it}
        state = {
            "version": VERSION, "fingerprint": self.fingerprint, "code": code_digest(), "config": learn.config,
            "model": learn.model.state_dict(), "opt": learn.opt.state_dict(), "scaler": learn.scaler.state_dict(),
            "rng": rngs, "pos": pos, "step": learn.step, "finished_phases": list(learn.finished_phases),
            "callbacks": {k: cb.state_dict() for k, cb in zip(callback_keys(learn.cbs), learn.cbs)},
        }
        save_checkpoint(self.path, state)

    def apply_pending(self, learn) -> None:
        """Restore RNG and callback states from the checkpoint, once."""
        r = self.pos
        if self.paused or r is None or r.pending is None:
            return
        set_rng_state(r.pending["rng"])
        states = r.pending["callbacks"]
        for key, cb in zip(callback_keys(learn.cbs), learn.cbs):
            if key in states:
                cb.load_state_dict(states[key])
        r.pending = None

    def discard(self) -> None:
        """Delete the checkpoint (rank 0) once the run it belongs to is complete; no-op without a run_dir."""
        D.barrier()                                     # no rank may still be reading it
        if self.run_dir is not None and D.is_main():
            self.path.unlink(missing_ok=True)

    def _load(self, learn) -> Optional[Position]:
        """Load a matching checkpoint into ``learn``; None (with a log line) when there is none or it is stale."""
        ck = load_checkpoint(self.path)
        if ck is None:
            return None
        if ck.get("fingerprint") != self.fingerprint or ck.get("version") != VERSION:
            log.warning("%s: ignoring checkpoint: fingerprint %r differs from this run's %r; starting fresh",
                        self.path, ck.get("fingerprint"), self.fingerprint)
            return None
        if ck.get("code") != code_digest():
            log.warning("%s: ignoring checkpoint: written by other dlpipe code (%s, now %s); starting fresh",
                        self.path, ck.get("code"), code_digest())
            return None
        load_state_strict(learn.model, ck["model"], str(self.path))
        try:
            learn.opt.load_state_dict(ck["opt"])
        except ValueError as e:
            raise ValueError(f"{self.path}: optimizer state does not match this learner's parameter groups: {e}") from None
        learn.scaler.load_state_dict(ck["scaler"])
        learn.step, learn.finished_phases = ck["step"], list(ck["finished_phases"])
        rng = ck["rng"][D.rank()] if D.rank() < len(ck["rng"]) else ck["rng"][0]
        pos = ck["pos"] or {"phase": None, "epoch": 0, "iter": 0}
        where = f"phase '{pos['phase']}' epoch {pos['epoch']} batch {pos['iter']}" if pos["phase"] else "a phase boundary"
        log.warning("%s: resuming at step %d, %s (finished phases: %s)", self.path, learn.step, where,
                    ", ".join(learn.finished_phases) or "none")
        return Position(pos["phase"], pos["epoch"], pos["iter"], {"rng": rng, "callbacks": ck["callbacks"]})

    def _rewrite_reports(self, learn) -> None:
        """Re-create history.tsv/curves.png from the checkpoint (DVC may have deleted them before the rerun)."""
        r = self.pos
        rec = learn.recorder
        if r is None or r.pending is None or rec is None:
            return
        key = dict(zip(map(id, learn.cbs), callback_keys(learn.cbs)))[id(rec)]
        if key in r.pending["callbacks"]:
            rec.write_reports(r.pending["callbacks"][key]["rows"], r.pending["callbacks"][key]["steps"])
