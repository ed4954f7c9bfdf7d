"""The chunked feature loader: whole chunks, every row once per epoch, order = f(seed, epoch)."""
import re
import threading
import time

import numpy as np
import pytest
import torch

from dlpipe.core.errors import DataError
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


# ---- prefetch (issue #8): a background thread reads ahead; batches, errors and shutdown ----------

def prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("prefetch ")]


class SlowRows(np.ndarray):
    """An array that reads like a store: ``.read`` records each chunk and can be made to fail."""
    path = "/stores/slow"
    fail_at: int | None = None

    def read(self, sl):
        reads = self.__dict__.setdefault("reads", [])
        if sl.stop > sl.start:
            reads.append(sl.start)
            if self.fail_at is not None and len(reads) >= self.fail_at:
                raise OSError(5, "Input/output error")
            time.sleep(0.002)
        return np.asarray(self)[sl]


def slow_rows(n, width=3, fail_at=None):
    x = ids_rows(n, width).view(SlowRows)
    x.fail_at = fail_at
    return x


@pytest.mark.parametrize("n,bs,chunk,buf,shuffle,rows", [
    (103, 10, 16, 1, True, None), (64, 8, 16, 2, True, None), (7, 32, 4, 1, True, None),
    (200, 7, 33, 3, True, np.arange(0, 200, 3)), (50, 5, 50, 1, False, None), (90, 4, 8, 2, False, np.arange(40, 90)),
])
def test_prefetch_gives_identical_batches(n, bs, chunk, buf, shuffle, rows):
    x, y = ids_rows(n, 4) * 1.5, np.arange(n) % 7
    mk = lambda pf: ChunkedFeatureLoader(x, y, bs=bs, chunk_rows=chunk, shuffle=shuffle, seed=2, buffer_chunks=buf,
                                         rows=rows, prefetch=pf)
    off, default, one = mk(0), mk(2), mk(1)
    assert ChunkedFeatureLoader(x, y, bs=bs).prefetch == 2              # on by default
    for epoch in range(3):
        for dl in (off, default, one):
            dl.set_epoch(epoch)
        ref = list(off)
        for dl in (default, one):
            got = list(dl)
            assert len(got) == len(ref) == len(dl)
            for (xa, ya), (xb, yb) in zip(ref, got):
                assert xa.dtype == xb.dtype == torch.float32 and ya.dtype == yb.dtype == torch.int64
                assert torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("backend", ["bcolz", "memmap"])
def test_prefetch_identical_on_a_real_store(tmp_path, backend):
    n = 300
    w = create_store(tmp_path / "s", row_shape=(5,), dtype="float16", backend=backend, chunk_rows=32)
    w.append((np.random.default_rng(0).normal(size=(n, 5)) * 4).astype(np.float16))
    w.close()
    r, vecs = open_store(tmp_path / "s"), np.random.default_rng(1).normal(size=(n, 3))   # DeViSE-like targets
    a = list(ChunkedFeatureLoader(r, vecs, bs=16, seed=5, buffer_chunks=2, prefetch=0))
    b = list(ChunkedFeatureLoader(r, vecs, bs=16, seed=5, buffer_chunks=2))
    assert len(a) == len(b) and all(torch.equal(p, q) for ab in zip(a, b) for p, q in zip(*ab))
    assert b[0][1].dtype == torch.float32


def test_prefetch_reads_a_bounded_number_of_buffers_ahead():
    x = slow_rows(40 * 16)
    dl = ChunkedFeatureLoader(x, np.zeros(len(x)), bs=16, chunk_rows=16, seed=0, prefetch=2)
    it = iter(dl)
    next(it)
    time.sleep(0.3)                       # ample time to read the whole store if it were unbounded
    # the consumer's buffer, 2 in the queue, 1 built and waiting to be queued
    assert len(x.reads) <= 1 + 2 + 1
    it.close()
    assert prefetch_threads() == []


def test_early_stop_leaves_no_thread():
    x = slow_rows(400)
    dl = ChunkedFeatureLoader(x, np.zeros(400), bs=8, chunk_rows=16, seed=0)
    for i, _ in enumerate(dl):            # break out of the loop
        if i == 3:
            break
    assert prefetch_threads() == []
    it = iter(dl)                         # close() by hand
    next(it)
    assert len(prefetch_threads()) == 1
    it.close()
    assert prefetch_threads() == []
    with pytest.raises(ZeroDivisionError):  # an exception in the consumer's loop body
        for _ in dl:
            1 / 0
    assert prefetch_threads() == []
    it = iter(dl)                         # an iterator dropped half-way
    next(it)
    del it
    assert prefetch_threads() == []
    assert len(list(dl)) == len(dl) and prefetch_threads() == []      # a whole epoch


@pytest.mark.parametrize("prefetch", [0, 2])
def test_reader_error_reaches_the_consumer_with_the_store_path(prefetch):
    x = slow_rows(160, fail_at=3)
    dl = ChunkedFeatureLoader(x, np.zeros(160), bs=8, chunk_rows=16, seed=0, prefetch=prefetch)
    got = []
    with pytest.raises(DataError, match=r"^/stores/slow: reading feature rows \d+:\d+ failed: "
                                        r"OSError: \[Errno 5\] Input/output error$") as e:
        for xb, _ in dl:
            got.append(xb)
    assert isinstance(e.value.__cause__, OSError)
    assert len(got) == 2 * 16 // 8                         # the batches of the 2 chunks read before the error
    assert prefetch_threads() == []


def test_corrupt_store_chunk_names_the_store(tmp_path):
    w = create_store(tmp_path / "s", row_shape=(3,), dtype="float32", backend="bcolz", chunk_rows=8)
    w.append(ids_rows(40))
    w.close()
    chunk = next((tmp_path / "s" / "data").rglob("__2.blp"))
    chunk.unlink()
    dl = ChunkedFeatureLoader(open_store(tmp_path / "s"), np.zeros(40), bs=4)
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 's'))}: reading feature rows 16:24 failed: "
                                        r".*__2\.blp"):
        list(dl)
    assert prefetch_threads() == []


def test_other_errors_in_the_thread_keep_their_type(monkeypatch):
    calls = []

    def ready(x, y):
        calls.append(len(x))
        if len(calls) == 2:
            raise RuntimeError("boom")
        return x.astype(np.float32), y

    monkeypatch.setattr(ChunkedFeatureLoader, "_ready", staticmethod(ready))
    dl = ChunkedFeatureLoader(ids_rows(64), np.zeros(64, np.int64), bs=8, chunk_rows=16)
    with pytest.raises(RuntimeError, match="boom") as e:
        list(dl)
    assert any("prefetch thread reading in-memory ndarray (64, 3)" in note for note in e.value.__notes__)
    assert prefetch_threads() == []


def test_prefetch_must_not_be_negative():
    with pytest.raises(ValueError, match="prefetch must be >= 0"):
        ChunkedFeatureLoader(ids_rows(4), np.zeros(4), bs=2, prefetch=-1)


def test_corrupt_chunk_is_a_data_error_naming_the_store_and_rows(tmp_path):
    w = create_store(tmp_path / "s", row_shape=(4,), dtype="float32", backend="bcolz", chunk_rows=16)
    w.append(ids_rows(64, 4))
    w.close()
    blp = next((tmp_path / "s" / "data").rglob("__1.blp"))
    raw = bytearray(blp.read_bytes())
    raw[16 + 4:16 + 8] = (128).to_bytes(4, "little")       # blosc header: wrong uncompressed size
    blp.write_bytes(bytes(raw))
    dl = ChunkedFeatureLoader(open_store(tmp_path / "s"), np.zeros(64), bs=4)
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 's'))}: reading feature rows 16:32 failed: "
                                        r"RuntimeError: .*Blosc decompression") as e:
        list(dl)
    assert isinstance(e.value.__cause__, RuntimeError)
    assert prefetch_threads() == []
