"""Schedule values at known points: one-cycle, STLR (ULMFiT eq. 3), SGDR restarts, constant."""
import math

import pytest

from dlpipe.train.schedules import make_schedule, one_cycle, sgdr, stlr


@pytest.mark.parametrize("pct, lr, mom", [
    (0.0, 1 / 25, 0.95),            # start: lr/div, high momentum
    (0.15, (1 + 1 / 25) / 2, 0.90),  # half-way up the cosine warm-up
    (0.3, 1.0, 0.85),               # peak at pct_start, low momentum
    (0.65, (1 + 1e-4) / 2, 0.90),   # half-way down
    (1.0, 1e-4, 0.95),              # end: lr/div_final
])
def test_one_cycle(pct, lr, mom):
    got_lr, got_mom = one_cycle(pct, div=25, div_final=1e4, pct_start=0.3)
    assert got_lr == pytest.approx(lr, rel=1e-9)
    assert got_mom == pytest.approx(mom, rel=1e-9)


@pytest.mark.parametrize("pct, mult", [
    (0.0, 1 / 32),                  # ULMFiT eq. 3: p=0 → lr_max/ratio
    (0.05, (1 + 0.5 * 31) / 32),    # half-way up
    (0.1, 1.0),                     # at cut: lr_max
    (0.55, (1 + 0.5 * 31) / 32),    # half-way down
    (1.0, 1 / 32),                  # end: lr_max/ratio
])
def test_stlr(pct, mult):
    assert stlr(pct, cut_frac=0.1, ratio=32)[0] == pytest.approx(mult, rel=1e-9)
    assert stlr(pct)[1] is None


@pytest.mark.parametrize("epoch, n_epochs, cycle_len, cycle_mult, mult", [
    (0.0, 4, 1, 1, 1.0),            # start of cycle 1
    (0.5, 4, 1, 1, 0.5),            # middle of cycle 1
    (1.0, 4, 1, 1, 1.0),            # restart at epoch 1
    (3.5, 4, 1, 1, 0.5),            # middle of the last cycle
    (1.0, 7, 1, 2, 1.0),            # cycles of 1, 2, 4 epochs: restarts at epochs 1 and 3
    (2.0, 7, 1, 2, 0.5),            # middle of the 2-epoch cycle
    (3.0, 7, 1, 2, 1.0),
    (5.0, 7, 1, 2, 0.5),            # middle of the 4-epoch cycle
    (2.0, 4, None, 1, 0.5),         # cycle_len None: one cosine over the phase
])
def test_sgdr(epoch, n_epochs, cycle_len, cycle_mult, mult):
    assert sgdr(epoch / n_epochs, n_epochs, cycle_len, cycle_mult)[0] == pytest.approx(mult, abs=1e-9)


def test_const_and_make_schedule():
    f = make_schedule("const", 3)
    assert f(0.0) == (1.0, None) and f(0.7) == (1.0, None)
    g = make_schedule("one_cycle", 3, div=10, pct_start=0.5)
    assert g(0.0)[0] == pytest.approx(0.1) and g(0.5)[0] == pytest.approx(1.0)
    h = make_schedule("cos", 4, cycle_len=1)
    assert h(0.25)[0] == pytest.approx(1.0)


@pytest.mark.parametrize("name, kwargs, match", [
    ("linear", {}, "unknown schedule 'linear'"),
    ("stlr", {"div": 3}, "schedule 'stlr'"),
])
def test_bad_schedule(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_schedule(name, 1, **kwargs)
