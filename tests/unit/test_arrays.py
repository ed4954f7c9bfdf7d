"""Feature store: both backends round-trip, publish atomically, refuse stale features."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dlpipe.core.errors import DataError
from dlpipe.io.arrays import check_free_space, create_store, open_store


def _write(path, src, backend, cuts, meta=None, chunk_rows=16):
    w = create_store(path, src.shape[1:], src.dtype, backend=backend, chunk_rows=chunk_rows,
                     meta=meta or {"layer": "pool", "backbone_sha256": "aaa"})
    for a, b in zip(cuts[:-1], cuts[1:]):
        w.append(src[a:b])
    w.add_array("labels", np.arange(len(src)) % 3)
    w.close()


def _tree_sha(path):
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode()); h.update(f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("backend", ["bcolz", "memmap"])
@pytest.mark.parametrize("row_shape,dtype", [((7,), np.float32), ((3, 2, 2), np.float16), ((5,), np.int64)])
def test_round_trip_uneven_appends(tmp_path, backend, row_shape, dtype):
    rng = np.random.default_rng(0)
    src = (rng.normal(size=(101, *row_shape)) * 10).astype(dtype)
    _write(tmp_path / "s", src, backend, [0, 1, 40, 41, 77, 101])
    r = open_store(tmp_path / "s", expect={"layer": "pool", "backbone_sha256": "aaa"})
    assert (len(r), r.shape, r.dtype, r.backend) == (101, src.shape, np.dtype(dtype), backend)
    chunks = list(r.iter_chunks())
    assert [len(c) for c in chunks] == [16] * 6 + [5]
    np.testing.assert_array_equal(np.concatenate(chunks), src)
    idx = rng.permutation(101)[:33]
    np.testing.assert_array_equal(r.read(idx), src[idx])
    np.testing.assert_array_equal(r.read(slice(10, 50)), src[10:50])
    np.testing.assert_array_equal(r.read(7), src[7])
    np.testing.assert_array_equal(r.labels, np.arange(101) % 3)
    assert r.meta["n_rows"] == 101 and r.meta["layer"] == "pool"


@pytest.mark.parametrize("backend", ["bcolz", "memmap"])
@pytest.mark.fault("Determinism", "store bytes independent of append batch sizes")
def test_bytes_do_not_depend_on_append_sizes(tmp_path, backend):
    src = np.random.default_rng(1).normal(size=(90, 6)).astype(np.float32)
    _write(tmp_path / "a", src, backend, [0, 90])
    _write(tmp_path / "b", src, backend, [0, 3, 17, 64, 65, 90])
    assert _tree_sha(tmp_path / "a") == _tree_sha(tmp_path / "b")


def test_bcolz_compresses_redundant_rows(tmp_path):
    src = np.zeros((512, 64), np.float32)
    src[:, ::8] = 1.0   # ReLU-like sparse activations compress well
    _write(tmp_path / "s", src, "bcolz", [0, 512], chunk_rows=128)
    r = open_store(tmp_path / "s")
    assert r.disk_nbytes < r.nbytes / 4


@pytest.mark.parametrize("field,value,needle", [
    ("backbone_sha256", "bbb", "computed with backbone aaa, but the current backbone is bbb: rerun precompute"),
    ("layer", "group2", "meta field 'layer' is 'pool', expected 'group2'"),
])
@pytest.mark.fault("Bad data", "feature store from another backbone/layer: DataError naming the field and both values")
def test_expect_mismatch_names_field(tmp_path, field, value, needle):
    _write(tmp_path / "s", np.ones((4, 2), np.float32), "bcolz", [0, 4])
    with pytest.raises(DataError, match=needle):
        open_store(tmp_path / "s", expect={field: value})


@pytest.mark.parametrize("backend", ["bcolz", "memmap"])
@pytest.mark.fault("Faults", "feature-store write failing midway: nothing left that opens as a store")
def test_failed_write_leaves_nothing_that_opens(tmp_path, backend):
    with pytest.raises(RuntimeError):
        with create_store(tmp_path / "s", (2,), np.float32, backend=backend) as w:
            w.append(np.ones((3, 2), np.float32))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="no meta.json"):
        open_store(tmp_path / "s")


@pytest.mark.fault("Bad data", "unfinished feature store (no meta.json): DataError 'not a feature store'")
def test_unclosed_store_does_not_open(tmp_path):
    w = create_store(tmp_path / "s", (2,), np.float32)
    w.append(np.ones((3, 2), np.float32))
    with pytest.raises(DataError, match="not a feature store"):
        open_store(tmp_path / "s")
    w.close()
    assert len(open_store(tmp_path / "s")) == 3


@pytest.mark.parametrize("rows,dtype,msg", [
    (np.ones((3, 3), np.float32), np.float32, r"expected rows of shape \(n, 2\) float32, got \(3, 3\)"),
    (np.ones((3, 2), np.float64), np.float32, "got \\(3, 2\\) float64"),
])
@pytest.mark.fault("Bad data", "rows of the wrong shape or dtype appended: DataError naming both")
def test_append_checks_shape_and_dtype(tmp_path, rows, dtype, msg):
    w = create_store(tmp_path / "s", (2,), dtype)
    with pytest.raises(DataError, match=msg):
        w.append(rows)
    w.abort()


@pytest.mark.fault("Bad data", "side array of the wrong length: DataError naming the array and counts")
def test_side_array_length_checked(tmp_path):
    w = create_store(tmp_path / "s", (2,), np.float32)
    w.append(np.ones((3, 2), np.float32))
    w.add_array("labels", np.zeros(2))
    with pytest.raises(DataError, match="side array 'labels' has 2 entries, expected one per row \\(3\\)"):
        w.close()
    assert not (tmp_path / "s").exists()


@pytest.mark.fault("Guardrails", "free-space check: DataError giving MiB needed before writing")
def test_free_space_check_names_numbers(tmp_path):
    check_free_space(tmp_path / "x" / "y", 1024)
    with pytest.raises(DataError, match="not enough disk space for features: need .* MiB free"):
        check_free_space(tmp_path / "x", 2**62, what="features")


@pytest.mark.fault("Determinism", "feature extraction twice: byte-identical stores")
def test_precompute_is_byte_identical_across_runs(tmp_path):
    """extract_features twice with the same backbone, order and params -> identical store bytes."""
    import torch

    from dlpipe.io.checkpoint import save_model
    from dlpipe.models.darknet import DarknetConfig, darknet
    from dlpipe.vision.features import extract_features, file_sha256, load_backbone

    torch.manual_seed(0)
    cfg = DarknetConfig(in_ch=3, nf=4, layers=(1, 1), n_classes=10)
    save_model(tmp_path / "bb.pt", darknet(cfg), {**cfg.__dict__, "layers": list(cfg.layers)},
               extra={"normalize": {"mean": [0.13], "std": [0.31]}})
    body, info = load_backbone(None, tmp_path / "bb.pt", "group1")
    assert info["backbone_sha256"] == file_sha256(tmp_path / "bb.pt")
    imgs = np.random.default_rng(0).integers(0, 256, size=(37, 20, 20, 1), dtype=np.uint8)
    order = np.random.default_rng(1).permutation(37)
    kw = dict(backend="bcolz", chunk_rows=8, clevel=5, cname="lz4")
    for run in ("a", "b"):
        m = extract_features(body, info, lambda i: imgs[i], order, 20, tmp_path / run, 10, "float32", kw,
                             {"seed": 1}, {"labels": np.arange(37)})
    assert _tree_sha(tmp_path / "a") == _tree_sha(tmp_path / "b")
    r = open_store(tmp_path / "a", expect={"backbone_sha256": info["backbone_sha256"], "layer": "group1"})
    assert r.shape == (37, 16, 5, 5) and m["rows"] == 37 and m["bytes_on_disk"] == r.disk_nbytes
    np.testing.assert_array_equal(r.labels, order)            # side arrays follow the row order
    with torch.no_grad():                                      # row r is the features of item order[r]
        from dlpipe.vision.transforms import to_float
        want = body(to_float(imgs[order[:3]], 3, [0.13], [0.31])).numpy()
    np.testing.assert_allclose(r.read(slice(0, 3)), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shuffle", ["noshuffle", "shuffle", "bitshuffle"])
def test_blosc_shuffle_round_trips_and_is_recorded(tmp_path, shuffle):
    src = np.maximum(np.random.default_rng(2).normal(size=(70, 9)), 0).astype(np.float32)
    with create_store(tmp_path / "s", (9,), np.float32, chunk_rows=16, shuffle=shuffle) as w:
        w.append(src)
    r = open_store(tmp_path / "s")
    assert r.meta["compression"] == {"cname": "lz4", "clevel": 5, "shuffle": shuffle}
    np.testing.assert_array_equal(np.concatenate(list(r.iter_chunks())), src)
    np.testing.assert_array_equal(r.read(slice(3, 60)), src[3:60])


def test_default_shuffle_is_noshuffle_and_bad_names_fail(tmp_path):
    with create_store(tmp_path / "s", (2,), np.float32) as w:
        w.append(np.ones((3, 2), np.float32))
    assert open_store(tmp_path / "s").meta["compression"]["shuffle"] == "noshuffle"
    with pytest.raises(ValueError, match=r"feature store shuffle: expected one of \['noshuffle', 'shuffle', "
                                         r"'bitshuffle'\], got 'bytes'"):
        create_store(tmp_path / "t", (2,), np.float32, shuffle="bytes")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("backend", ["bcolz", "memmap"])
def test_reads_are_independent_in_ram_arrays(tmp_path, backend):
    """read() without a defensive copy for bcolz slices: still a fresh, writable array every call."""
    src = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
    _write(tmp_path / "s", src, backend, [0, 40], chunk_rows=16)
    r = open_store(tmp_path / "s")
    for sl in (slice(0, 16), slice(5, 37), slice(32, 40), slice(10, 10)):
        a = r.read(sl)
        assert a.flags.writeable and a.flags.c_contiguous and not isinstance(a, np.memmap)
        a[...] = -1
        np.testing.assert_array_equal(r.read(sl), src[sl])
    chunks = list(r.iter_chunks())
    chunks[0][...] = -1
    np.testing.assert_array_equal(np.concatenate(list(r.iter_chunks())), src)


@pytest.mark.parametrize("shuffle", ["noshuffle", "shuffle", "bitshuffle"])
@pytest.mark.parametrize("row_shape,dtype", [((7,), np.float32), ((3, 2, 2), np.float16), ((5,), np.int64)])
def test_slice_reads_every_shuffle_and_row_shape(tmp_path, shuffle, row_shape, dtype):
    rng = np.random.default_rng(3)
    src = (rng.normal(size=(101, *row_shape)) * 10).astype(dtype)
    with create_store(tmp_path / "s", row_shape, dtype, chunk_rows=16, shuffle=shuffle) as w:
        w.append(src)
    r = open_store(tmp_path / "s")
    for a, b in [(0, 16), (16, 48), (3, 29), (0, 101), (90, 101), (96, 101), (15, 17), (40, 40), (-20, None)]:
        got = r.read(slice(a, b))
        np.testing.assert_array_equal(got, src[a:b])
        assert got.dtype == src.dtype and got.shape == src[a:b].shape
    np.testing.assert_array_equal(r.read(slice(1, 90, 3)), src[1:90:3])

