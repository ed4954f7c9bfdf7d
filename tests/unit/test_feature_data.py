"""The chunked feature loader: whole chunks, every row once per epoch, order = f(seed, epoch)."""
import numpy as np
import pytest
import torch

from dlpipe.io.arrays import create_store, open_store
from dlpipe.vision.feature_data import ChunkedFeatureLoader


def ids_rows(n, width=3):
    """Rows whose first column is their own index, so batches reveal which rows they hold."""
    x = np.zeros((n, width), np.float32)
    x[:, 0] = np.arange(n)
    return x


def epoch_ids(dl, epoch):
    dl.set_epoch(epoch)
    return [xb[:, 0].long().tolist() for xb, _ in dl]


@pytest.mark.parametrize("n,bs,chunk,buf", [(103, 10, 16, 1), (64, 8, 16, 2), (7, 32, 4, 1), (50, 5, 50, 1)])
def test_every_row_exactly_once_per_epoch(n, bs, chunk, buf):
    dl = ChunkedFeatureLoader(ids_rows(n), np.arange(n) % 3, bs=bs, chunk_rows=chunk, seed=1, buffer_chunks=buf)
    for epoch in range(3):
        batches = epoch_ids(dl, epoch)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(n))
        assert len(batches) == len(dl)
        assert all(len(b) == bs for b in batches[:-1])


def test_targets_stay_with_their_rows():
    n = 40
    dl = ChunkedFeatureLoader(ids_rows(n), (np.arange(n) * 7) % 5, bs=6, chunk_rows=8, seed=3)
    for xb, yb in dl:
        assert yb.dtype == torch.int64
        assert torch.equal(yb, (xb[:, 0].long() * 7) % 5)


def test_order_is_pure_function_of_seed_and_epoch():
    mk = lambda seed: ChunkedFeatureLoader(ids_rows(90), np.zeros(90), bs=7, chunk_rows=10, seed=seed)
    a, b = mk(5), mk(5)
    assert epoch_ids(a, 2) == epoch_ids(b, 2)
    assert epoch_ids(a, 2) == epoch_ids(a, 2)          # re-iterating the same epoch repeats it
    assert epoch_ids(a, 1) != epoch_ids(a, 2)
    assert epoch_ids(mk(6), 2) != epoch_ids(a, 2)


def test_reads_whole_contiguous_chunks_in_permuted_order():
    reads = []

    class Recording(np.ndarray):
        def read(self, sl):
            reads.append((sl.start, sl.stop))
            return np.asarray(self)[sl]

    x = ids_rows(50).view(Recording)
    dl = ChunkedFeatureLoader(x, np.zeros(50), bs=4, chunk_rows=10, seed=0)
    list(dl)
    chunk_reads = [r for r in reads if r[1] > r[0]]
    assert sorted(chunk_reads) == [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)]
    assert chunk_reads != sorted(chunk_reads)          # shuffled chunk order (seed 0)


def test_no_shuffle_reads_in_order():
    dl = ChunkedFeatureLoader(ids_rows(30), np.zeros(30), bs=4, chunk_rows=8, shuffle=False)
    assert [i for b in epoch_ids(dl, 0) for i in b] == list(range(30))


def test_row_subset_once_per_epoch_and_skips_empty_chunks():
    reads = []

    class Recording(np.ndarray):
        def read(self, sl):
            reads.append(sl.start)
            return np.asarray(self)[sl]

    rows = np.array([3, 5, 40, 41, 47])               # chunks 0 and 40 only
    dl = ChunkedFeatureLoader(ids_rows(60).view(Recording), np.zeros(60), bs=2, chunk_rows=10, seed=4, rows=rows)
    for epoch in range(2):
        assert sorted(i for b in epoch_ids(dl, epoch) for i in b) == rows.tolist()
    assert len(dl) == 3 and set(reads) - {0} <= {40} and 40 in reads
    with pytest.raises(ValueError, match="rows must be distinct"):
        ChunkedFeatureLoader(ids_rows(5), np.zeros(5), bs=2, rows=np.array([1, 5]))


@pytest.mark.parametrize("backend", ["bcolz", "memmap"])
def test_reads_a_real_feature_store(tmp_path, backend):
    n = 37
    w = create_store(tmp_path / "s", row_shape=(3,), dtype="float16", backend=backend, chunk_rows=8)
    w.append(ids_rows(n).astype(np.float16))
    w.add_array("labels", np.arange(n) % 2)
    w.close()
    r = open_store(tmp_path / "s")
    dl = ChunkedFeatureLoader(r, r.labels, bs=5, seed=0)
    assert dl.chunk_rows == 8
    got = [(xb, yb) for xb, yb in dl]
    assert got[0][0].dtype == torch.float32
    ids = torch.cat([xb[:, 0] for xb, _ in got]).long()
    assert sorted(ids.tolist()) == list(range(n))
    assert torch.equal(torch.cat([yb for _, yb in got]), ids % 2)
