"""Learning-rate and momentum schedules as pure functions of training progress.

Every schedule maps ``pct`` (fraction of the phase done, in [0, 1]) and its hyperparameters to
``(lr_mult, mom)``: the learner sets each parameter group's lr to ``group_base_lr * lr_mult`` and,
when ``mom`` is not None, the group's momentum (SGD) or beta1 (Adam). ``pct`` at batch ``t`` of a
phase with ``T`` batches is ``t / T``, so the first batch sees ``pct = 0``.

    one_cycle (div=25, pct_start=0.3, div_final=1e4)        stlr (cut_frac=0.1, ratio=32)
    lr  1 |      .-''-.                                    1 |   /\\
        |    /        '.                                     |  /   ' .
    1/div|__/            '-.__ 1/div_final               1/32|_/         ' . _
          0  pct_start          1                             0 .1              1
    mom 0.95 \\__ 0.85 __/ 0.95 (inverse to the lr)
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Optional

Schedule = Callable[[float], "tuple[float, Optional[float]]"]


def cos_anneal(start: float, end: float, pct: float) -> float:
    """Cosine interpolation from ``start`` (pct=0) to ``end`` (pct=1)."""
    return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))


def one_cycle(pct: float, div: float = 25.0, div_final: float = 1e4, pct_start: float = 0.3,
              moms: tuple[float, float] = (0.95, 0.85)) -> tuple[float, float]:
    """One-cycle (Smith; fastai): lr/div → lr at ``pct_start``, then cosine down to lr/div_final.

    Both ramps are cosine (fastai v1's ``annealing_cos``); momentum moves inversely, moms[0] →
    moms[1] → moms[0].
    """
    if pct < pct_start:
        p = pct / pct_start
        return cos_anneal(1 / div, 1.0, p), cos_anneal(moms[0], moms[1], p)
    p = (pct - pct_start) / (1 - pct_start)
    return cos_anneal(1.0, 1 / div_final, p), cos_anneal(moms[1], moms[0], p)


def stlr(pct: float, cut_frac: float = 0.1, ratio: float = 32.0) -> tuple[float, None]:
    """Slanted triangular LR, ULMFiT eq. 3 with ``t/T`` as ``pct``: lr_max * (1 + p (ratio-1)) / ratio."""
    if pct < cut_frac:
        p = pct / cut_frac
    else:
        p = 1 - (pct - cut_frac) / (1 - cut_frac)
    return (1 + p * (ratio - 1)) / ratio, None


def sgdr(pct: float, n_epochs: int, cycle_len: Optional[float] = None, cycle_mult: float = 1.0,
         eta_min: float = 0.0) -> tuple[float, None]:
    """Cosine annealing with warm restarts (SGDR) over ``n_epochs``.

    Cycles last ``cycle_len, cycle_len*cycle_mult, ...`` epochs; ``cycle_len=None`` is one cosine
    over the whole phase. ``eta_min`` is the floor as a fraction of the base lr.
    """
    pos = pct * n_epochs                   # position in epochs
    length = float(cycle_len or n_epochs)
    while pos >= length and length > 0:    # find the cycle containing pos
        pos -= length
        length *= cycle_mult
    return cos_anneal(1.0, eta_min, pos / length), None


def const(pct: float) -> tuple[float, None]:
    """Constant lr (the group base lr throughout)."""
    return 1.0, None


SCHEDULES = {"one_cycle": one_cycle, "stlr": stlr, "cos": sgdr, "const": const}


def make_schedule(name: str, n_epochs: int, **kwargs) -> Schedule:
    """The schedule ``name`` with its hyperparameters bound: a function ``pct -> (lr_mult, mom)``.

    Args:
        name: one of ``one_cycle``, ``stlr``, ``cos`` (SGDR), ``const``.
        n_epochs: epochs in the phase (used by ``cos`` to place restarts).
        kwargs: that schedule's hyperparameters (e.g. ``pct_start``, ``div``, ``cut_frac``).
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule '{name}' (expected one of: {', '.join(SCHEDULES)})")
    fn = SCHEDULES[name]
    if name == "cos":
        kwargs = {"n_epochs": n_epochs, **kwargs}
    try:
        fn(0.0, **kwargs)                  # fail now, not at the first batch, on a bad keyword
    except TypeError as e:
        raise ValueError(f"schedule '{name}': {e}") from None
    return functools.partial(fn, **kwargs)
