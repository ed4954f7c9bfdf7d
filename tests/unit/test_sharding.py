"""Global batches split over DDP ranks (rank/world passed explicitly: no process group needed).

Every loader's rule: rank r's batch j holds rows r, r+W, ... of the single-process batch j, so the
ranks together train on exactly what one process would. And a final batch of one row, which
BatchNorm cannot train on, is dropped only when asked (``drop_single``), never any other row.
"""
import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from dlpipe.core.errors import ParamsError
from dlpipe.text.corpus import Corpus
from dlpipe.text.lm_data import LMLoader
from dlpipe.text.samplers import SortishSampler
from dlpipe.train.data import Batches, ShardedSampler, make_loader, per_rank, shard
from dlpipe.vision.feature_data import ChunkedFeatureLoader


@pytest.mark.parametrize("n, world, expect", [
    (6, 2, [[0, 2, 4], [1, 3, 5]]),
    (5, 2, [[0, 2, 4], [1, 3, 0]]),           # padded by wrapping round: equal counts
    (2, 3, [[0], [1], [0]]),
    (4, 1, [[0, 1, 2, 3]]),
])
def test_shard_table(n, world, expect):
    assert [shard(list(range(n)), r, world) for r in range(world)] == expect


def test_per_rank_names_the_param_when_the_batch_does_not_split():
    assert per_rank(32, 4) == 8
    with pytest.raises(ParamsError, match=r"batch size 30 .* 4 training processes .*runtime.nproc_per_node"):
        per_rank(30, 4)


@pytest.mark.parametrize("n, bs, drop_single, sizes", [
    (9, 4, False, [4, 4, 1]),
    (9, 4, True, [4, 4]),                      # only the one-row batch goes
    (10, 4, True, [4, 4, 2]),                  # a two-row batch stays
    (3, 1, True, [1, 1, 1]),                   # bs 1 asked for: nothing dropped
])
def test_batches_drop_only_a_single_row_final_batch(n, bs, drop_single, sizes):
    b = Batches(range(n), bs, drop_last=False, drop_single=drop_single)
    assert [len(x) for x in b] == sizes and len(b) == len(sizes)


def test_make_loader_shards_a_custom_sampler_into_the_global_batches():
    lengths = np.random.default_rng(0).integers(5, 200, size=37)
    ds = TensorDataset(torch.arange(37))
    one = [b[0].tolist() for b in make_loader(ds, 8, True, 3, sampler=SortishSampler(lengths, 8, 3))]
    shards = []
    for r in range(2):
        sampler = ShardedSampler(SortishSampler(lengths, 8, 3), r, 2)
        shards.append([[int(i) for i in b] for b in Batches(sampler, per_rank(8, 2))])
    assert len(shards[0]) == len(shards[1]) == len(one)
    flat = [i for b in one for i in b]
    for j, batch in enumerate(one):            # together the ranks hold global batch j ...
        both = shards[0][j] + shards[1][j]
        pad = len(both) - len(batch)           # ... the last one padded with the order's first items
        assert sorted(both) == sorted(batch + flat[:pad]) and pad <= 1


def test_lm_loader_ranks_read_interleaved_columns_of_the_global_batch():
    ids = np.arange(1000, dtype=np.int32)
    corpus = Corpus(ids, np.array([0, 300, 650, 1000]), np.zeros(3, np.int64))
    one = list(LMLoader(corpus, 8, 10, seed=1, shuffle=True))
    ranks = [list(LMLoader(corpus, 8, 10, seed=1, shuffle=True, rank=r, world=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(one)
    for (x, y), (x0, y0), (x1, y1) in zip(one, *ranks):
        assert x0.shape == (4, x.shape[1])
        assert torch.equal(x[0::2], x0) and torch.equal(x[1::2], x1)
        assert torch.equal(y[0::2], y0) and torch.equal(y[1::2], y1)
    with pytest.raises(ParamsError, match="runtime.nproc_per_node"):
        LMLoader(corpus, 6, 10, seed=1, rank=0, world=4)


@pytest.mark.parametrize("n, bs, world", [(50, 8, 2), (49, 8, 2), (41, 8, 4)])
def test_feature_loader_ranks_split_each_global_batch(n, bs, world):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n)
    one = list(ChunkedFeatureLoader(x, y, bs, chunk_rows=7, seed=2, buffer_chunks=2))
    ranks = [list(ChunkedFeatureLoader(x, y, bs, chunk_rows=7, seed=2, buffer_chunks=2, rank=r, world=world))
             for r in range(world)]
    for r in range(world):
        assert len(ranks[r]) == len(one)
        for (xb, yb), (xr, yr) in zip(one, ranks[r]):
            want = shard(list(range(len(yb))), r, world)
            assert torch.equal(yr, yb[want]) and torch.equal(xr, xb[want])


@pytest.mark.parametrize("n, bs, world, last", [(17, 8, 1, 1), (18, 8, 2, 2), (19, 8, 2, 3), (20, 8, 2, 4)])
def test_feature_loader_drop_single(n, bs, world, last):
    x, y = np.zeros((n, 2), np.float32), np.arange(n)
    dl = ChunkedFeatureLoader(x, y, bs, seed=0, drop_single=True, rank=0, world=world)
    sizes = [len(b[1]) for b in dl]
    assert len(dl) == len(sizes)
    # the final global batch has `last` rows; it is kept only if every rank gets two or more of them
    if -(-last // world) == 1:
        assert len(sizes) == n // bs
    else:
        assert sizes[-1] == -(-last // world)
