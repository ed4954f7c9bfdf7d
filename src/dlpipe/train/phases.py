"""Training as a list of phases: what is trainable, for how long, at which learning rates.

Gradual unfreezing (ULMFiT), head-then-all fine-tuning (fastai's ``fine_tune``) and a plain
one-cycle run are all lists of :class:`Phase`::

    fit_phases(learn, [Phase("head", 1, 3e-3, freeze_to=-1, sched_kwargs={"pct_start": 0.3}),
                       Phase("all", 2, slice(3e-4, 3e-3), sched_kwargs={"pct_start": 0.3})])

Each phase is one ``Learner.fit`` with its own name, so a killed run resumes inside the right one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from dlpipe.train.param_groups import LR


@dataclass(frozen=True)
class Phase:
    name: str                          # unique within the run (resume finds its place by it)
    epochs: int                        # 0: skipped
    lr: LR                             # float, slice(lo, hi) or one per layer group
    freeze_to: Optional[int] = 0       # freeze groups before this one (-1: last group only); 0: all train
    schedule: str = "one_cycle"
    sched_kwargs: dict = field(default_factory=dict)


def fit_phases(learn, phases: Sequence[Phase]) -> None:
    """Fit each phase in order (freezing first); phases with 0 epochs are skipped."""
    for ph in phases:
        if ph.epochs == 0:
            continue
        learn.freeze_to(ph.freeze_to) if ph.freeze_to else learn.unfreeze()
        learn.fit(ph.epochs, ph.lr, schedule=ph.schedule, phase=ph.name, **ph.sched_kwargs)
