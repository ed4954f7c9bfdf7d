"""LM batching: batchify's picture, the bptt draw, and LMLoader coverage/shift/determinism."""
import string

import numpy as np
import pytest
import torch

from dlpipe.text.corpus import Corpus
from dlpipe.text.lm_data import LMLoader, batchify, draw_seq_len, draw_seq_lens


def test_batchify_alphabet_picture():
    stream = np.array([ord(c) for c in string.ascii_lowercase])
    b = batchify(stream, 4)
    assert b.shape == (6, 4)
    cols = ["".join(chr(x) for x in b[:, j]) for j in range(4)]
    assert cols == ["abcdef", "ghijkl", "mnopqr", "stuvwx"]  # "yz" dropped
    assert "".join(chr(x) for x in b[0]) == "agms"


def test_bptt_distribution():
    rng = np.random.default_rng(0)
    draws = np.array([draw_seq_len(70, rng) for _ in range(20000)])
    near_full = np.abs(draws - 70) < 20
    near_half = np.abs(draws - 35) < 20
    assert abs(near_full.mean() - 0.95) < 0.01 and abs(near_half.mean() - 0.05) < 0.01
    assert abs(draws[near_full].std() - 5) < 0.3 and abs(draws[near_full].mean() - 69.5) < 0.3  # int() floors
    assert draws.min() >= 5


def test_seq_lens_cover_every_step_and_respect_min_seq():
    lens = draw_seq_lens(1000, 10, np.random.default_rng(1), sigma=8, min_seq=5)
    assert lens.sum() == 999 and (lens[:-1] >= 5).all()


def _loader(n=1003, **kw):
    return LMLoader(np.arange(n), **{"bs": 4, "bptt": 12, "seed": 7, **kw})


def test_x_y_shift_and_full_coverage_in_order():
    dl = _loader()
    xs, ys = zip(*dl)
    assert len(xs) == len(dl)
    x, y = torch.cat(xs, 1), torch.cat(ys, 1)          # (bs, n_steps - 1)
    cols = torch.from_numpy(batchify(np.arange(1003), 4).T.copy())
    assert xs[0].dtype == torch.long and xs[0].shape[0] == 4
    assert torch.equal(x, cols[:, :-1]) and torch.equal(y, cols[:, 1:])


def test_epoch_is_a_pure_function_of_seed_and_epoch():
    a, b = _loader(), _loader()
    a.set_epoch(3), b.set_epoch(3)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    b.set_epoch(4)
    assert [t.shape for t, _ in a] != [t.shape for t, _ in b]


def test_backwards_reverses_the_stream():
    x = torch.cat([x for x, _ in _loader(n=400, backwards=True, random_bptt=False)], 1)
    assert torch.equal(x[0, :5], torch.tensor([399, 398, 397, 396, 395]))


def test_shuffle_permutes_whole_documents():
    offsets = np.array([0, 3, 7, 12, 20, 30, 41, 53, 66, 80, 95, 111, 128])
    ids = np.arange(offsets[-1], dtype=np.int32)
    c = Corpus(ids, offsets, np.zeros(len(offsets) - 1, np.int64))
    dl = LMLoader(c, bs=2, bptt=5, seed=0, shuffle=True)
    s0 = dl.epoch_stream()
    assert sorted(s0.tolist()) == ids.tolist() and not np.array_equal(s0, ids)
    starts = {int(ids[o]) for o in offsets[:-1]}
    i = 0
    while i < len(s0):  # each document appears contiguously
        d = next(k for k in range(len(offsets) - 1) if offsets[k] == s0[i])
        n = offsets[d + 1] - offsets[d]
        assert s0[i] in starts and np.array_equal(s0[i:i + n], ids[offsets[d]:offsets[d + 1]])
        i += n
    with pytest.raises(ValueError, match="needs a Corpus"):
        LMLoader(ids, bs=2, bptt=5, seed=0, shuffle=True)
