"""Samplers yield every index once; sortish keeps batch neighbours' lengths close; pad_collate."""
import numpy as np
import pytest
import torch

from dlpipe.text.corpus import Corpus
from dlpipe.text.samplers import ClassifierDataset, SortishSampler, SortSampler, pad_collate

LENGTHS = np.random.default_rng(0).integers(5, 2000, size=3200)  # 200 full batches of 16


def test_sort_sampler_is_descending_and_complete():
    idx = list(SortSampler(LENGTHS))
    assert sorted(idx) == list(range(len(LENGTHS)))
    assert (np.diff(LENGTHS[idx]) <= 0).all()


def _mean_batch_spread(idx, bs):
    lens = LENGTHS[np.asarray(idx)]
    return np.mean([lens[i:i + bs].max() - lens[i:i + bs].min() for i in range(0, len(lens), bs)])


def test_sortish_is_complete_close_and_longest_first():
    s = SortishSampler(LENGTHS, bs=16, seed=3)
    idx = list(s)
    assert sorted(idx) == list(range(len(LENGTHS))) and len(s) == len(LENGTHS)
    random_spread = _mean_batch_spread(np.random.default_rng(1).permutation(len(LENGTHS)), 16)
    assert _mean_batch_spread(idx, 16) < random_spread / 10
    assert LENGTHS[idx[0]] == LENGTHS.max()


def test_sortish_order_is_a_pure_function_of_seed_and_epoch():
    a, b = SortishSampler(LENGTHS, 16, seed=3), SortishSampler(LENGTHS, 16, seed=3)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)


@pytest.mark.parametrize("pad_first,backwards,seq_len,expected", [
    (True, False, None, [[1, 1, 1, 5, 6], [7, 8, 9, 4, 3]]),
    (False, False, None, [[5, 6, 1, 1, 1], [7, 8, 9, 4, 3]]),
    (True, True, None, [[1, 1, 1, 6, 5], [3, 4, 9, 8, 7]]),
    (True, False, 2, [[1, 1, 5, 6, 1], [7, 8, 9, 4, 3]]),   # whole chunks of 2 pads first, the rest last
    (True, True, 2, [[1, 1, 6, 5, 1], [3, 4, 9, 8, 7]]),
    (True, False, 4, [[5, 6, 1, 1, 1], [7, 8, 9, 4, 3]]),   # < one chunk of padding: all of it last
])
def test_pad_collate(pad_first, backwards, seq_len, expected):
    x, y = pad_collate([(np.array([5, 6]), 0), (np.array([7, 8, 9, 4, 3]), 1)], pad_idx=1,
                       pad_first=pad_first, backwards=backwards, seq_len=seq_len)
    assert x.dtype == torch.long and x.tolist() == expected and y.tolist() == [0, 1]


def test_classifier_dataset():
    c = Corpus(np.arange(6, dtype=np.int32), np.array([0, 2, 6]), np.array([1, 0]))
    ds = ClassifierDataset(c)
    ids, label = ds[1]
    assert len(ds) == 2 and ids.tolist() == [2, 3, 4, 5] and label == 0
