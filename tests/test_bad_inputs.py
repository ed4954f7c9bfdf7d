"""Bad inputs not covered by the unit tests: real params sections with typos, real data files broken.

Params: each case edits one key of the real params.yaml (at tiny scale) and loads the section through
the dataclass its stage uses; the error names the file, the full dotted key and what was expected.
Bad data: real mirror files truncated or mangled, fed to the library functions the stages call.
"""
from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from dlpipe.core import params as P
from dlpipe.core.errors import DataError
from dlpipe.io.checkpoint import CheckpointMismatch, load_model, save_model
from dlpipe.io.extract import extract_archive
from dlpipe.core.params import ParamsError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.tasks.ulmfit.params import ModelParams
from dlpipe.tasks.ulmfit.params import PretrainParams as LMParams
from dlpipe.vision.index import IndexParams
from dlpipe.tasks.transfer.params import PrecomputeParams
from dlpipe.tasks.transfer.params import TrainHeadParams
from dlpipe.text.tokenize import TokenizeParams, tokenize_csv
from dlpipe.text.vocab import NumericalizeParams
from dlpipe.vision.features import BackboneParams
from stage_runs import stage_cmd, tiny_params


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    return yaml.safe_load(tiny_params(tmp_path_factory.mktemp("params")).read_text(encoding="utf-8"))


def _set(data: dict, key: str, value) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        data = data[part]
    data[leaf] = value


def _rename(data: dict, key: str, new: str) -> None:
    *parents, leaf = key.split(".")
    for part in parents:
        data = data[part]
    data[new] = data.pop(leaf)


_DROP = object()
PARAM_CASES = [   # id, class, section, edit (key, value | _DROP | ("rename", new)), message after "params.yaml: "
    ("tokenize-typo", TokenizeParams, "imdb.tokenize", ("imdb.tokenize.n_workers", ("rename", "n_worker")),
     r"imdb\.tokenize\.n_worker: unknown key \(expected one of: chunk_size, n_workers\)"),
    ("tokenize-missing", TokenizeParams, "imdb.tokenize", ("imdb.tokenize.chunk_size", _DROP),
     r"imdb\.tokenize\.chunk_size: missing key \(an integer expected\)"),
    ("tokenize-zero-workers", TokenizeParams, "imdb.tokenize", ("imdb.tokenize.n_workers", 0),
     r"imdb\.tokenize\.n_workers: expected a value >= 1, got 0 \(int\)"),
    ("numericalize-str", NumericalizeParams, "imdb.numericalize", ("imdb.numericalize.min_freq", "two"),
     r"imdb\.numericalize\.min_freq: expected an integer, got 'two' \(str\)"),
    ("lm-schedule-choice", LMParams, "imdb.pretrain_lm", ("imdb.pretrain_lm.schedule", "cosine"),
     r"imdb\.pretrain_lm\.schedule: expected one of \['stlr', 'one_cycle', 'cos', 'const'\], got 'cosine'"),
    ("lm-lr-not-number", LMParams, "imdb.pretrain_lm", ("imdb.pretrain_lm.lr", "fast"),
     r"imdb\.pretrain_lm\.lr: expected a number, got 'fast' \(str\)"),
    ("lm-bool-for-int", LMParams, "imdb.pretrain_lm", ("imdb.pretrain_lm.bs", True),
     r"imdb\.pretrain_lm\.bs: expected an integer, got True \(bool\)"),
    ("model-missing-section", ModelParams, "imdb.model", ("imdb.model", _DROP), r"missing key 'imdb\.model'"),
    ("runtime-seed-str", RuntimeParams, "runtime", ("runtime.seed", "42a"),
     r"runtime\.seed: expected an integer, got '42a' \(str\)"),
    ("precompute-dtype-choice", PrecomputeParams, "vision.precompute.mnist_sample",
     ("vision.precompute.mnist_sample.dtype", "float64"),
     r"vision\.precompute\.mnist_sample\.dtype: expected one of \['float32', 'float16'\], got 'float64'"),
    ("precompute-clevel-range", PrecomputeParams, "vision.precompute.mnist_sample",
     ("vision.precompute.mnist_sample.clevel", 12),
     r"vision\.precompute\.mnist_sample\.clevel: expected a value <= 9, got 12 \(int\)"),
    ("backbone-layers-item", BackboneParams, "vision.backbone", ("vision.backbone.layers", [1, "two"]),
     r"vision\.backbone\.layers\[1\]: expected an integer, got 'two' \(str\)"),
    ("index-fraction-range", IndexParams, "vision.index", ("vision.index.valid_pct", 1.5),
     r"vision\.index\.valid_pct: expected a value"),
    ("head-typo", TrainHeadParams, "vision.train_head", ("vision.train_head.epochs", ("rename", "epoch")),
     r"vision\.train_head\.epoch: unknown key \(expected one of: .*epochs"),
]


@pytest.mark.fault("Params", "real stage section with one bad key: ParamsError naming params.yaml, the full "
                   "dotted key and what was expected")
@pytest.mark.parametrize("cls, section, edit, match", [c[1:] for c in PARAM_CASES], ids=[c[0] for c in PARAM_CASES])
def test_real_section_rejects_bad_key(tiny, tmp_path, cls, section, edit, match):
    data = yaml.safe_load(yaml.safe_dump(tiny))    # a deep copy
    key, value = edit
    if value is _DROP:
        parent, _, leaf = key.rpartition(".")
        node = data
        for part in parent.split("."):
            node = node[part]
        del node[leaf]
    elif isinstance(value, tuple):
        _rename(data, key, value[1])
    else:
        _set(data, key, value)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ParamsError, match=rf"^{path}: {match}"):
        P.load(cls, section, path)
    P.load(cls, section, tiny_params(tmp_path / "good"))     # the unedited section loads


@pytest.mark.fault("Params", "stage CLI with a params typo: exits non-zero before any work, the last line names "
                   "the key; no output directory")
def test_tokenize_stage_fails_on_typo_before_work(tmp_path):
    params = tiny_params(tmp_path)
    data = yaml.safe_load(params.read_text(encoding="utf-8"))
    _rename(data, "imdb.tokenize.n_workers", "n_wrkers")
    params.write_text(yaml.safe_dump(data), encoding="utf-8")
    src = tmp_path / "in.csv"
    src.write_text('0,"a fine film"\n', encoding="utf-8")
    res = subprocess.run(stage_cmd("tokenize_text", "--params", params, src, tmp_path / "out"),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert res.stderr.strip().splitlines()[-1].endswith(
        f"{params}: imdb.tokenize.n_wrkers: unknown key (expected one of: chunk_size, n_workers)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "params.yaml"]


# ---- bad data -----------------------------------------------------------------------------------

@pytest.mark.fault("Bad data", "truncated .tgz (the real IMDb sample cut in half): DataError naming the archive; "
                   "nothing extracted")
def test_truncated_real_tarball(mirror, tmp_path):
    blob = (mirror / "imdb_sample" / "imdb_sample.tgz").read_bytes()
    archive = tmp_path / "imdb_sample.tgz"
    archive.write_bytes(blob[: len(blob) // 2])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match=rf"{archive}: truncated or corrupt tar archive \(Compressed file ended"):
        extract_archive(archive, "tar", dest)
    assert not any(p for p in dest.rglob("*") if not p.name.startswith(".tmp-"))


def _imdb_rows(mirror: Path, n: int) -> bytes:
    with tarfile.open(mirror / "imdb_sample" / "imdb_sample.tgz") as tf:
        text = tf.extractfile("imdb_sample/valid.csv").read()
    return b"".join(io.BytesIO(text).readlines()[:n])


@pytest.mark.fault("Bad data", "tokenize on a real CSV with Latin-1 bytes in row 4: DataError naming the file, "
                   "line 4 and the byte; no token store")
def test_tokenize_non_utf8(mirror, tmp_path):
    rows = _imdb_rows(mirror, 3) + '1,"caf\u00e9 au lait"\n'.encode("latin-1")
    (tmp_path / "in.csv").write_bytes(rows)
    with pytest.raises(DataError, match=rf"{tmp_path / 'in.csv'}: line 4: not UTF-8 \(byte b'\\xe9' after 'caf'\)"):
        tokenize_csv(tmp_path / "in.csv", tmp_path / "out", TokenizeParams(n_workers=1, chunk_size=2))
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".tmp-*"))


@pytest.mark.fault("Bad data", "tokenize on a CSV whose row 5 has no text column: DataError naming the file and "
                   "line, after earlier chunks were already tokenized; no token store")
def test_tokenize_bad_row_after_first_chunk(mirror, tmp_path):
    (tmp_path / "in.csv").write_bytes(_imdb_rows(mirror, 4) + b"1\n")
    with pytest.raises(DataError, match=rf"{tmp_path / 'in.csv'}: line 5: expected 'label,text'"):
        tokenize_csv(tmp_path / "in.csv", tmp_path / "out", TokenizeParams(n_workers=1, chunk_size=2))
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".tmp-*"))


@pytest.mark.fault("Bad data", "tokenize on a missing CSV: DataError 'input CSV not found' naming the path")
def test_tokenize_missing_input(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path / 'nope.csv'}: input CSV not found"):
        tokenize_csv(tmp_path / "nope.csv", tmp_path / "out", TokenizeParams(n_workers=1, chunk_size=2))
    assert not (tmp_path / "out").exists()


@pytest.mark.fault("Bad data", "LM checkpoint from an incompatible config (emb_sz 16 vs 24): CheckpointMismatch "
                   "listing every mismatched tensor with both shapes")
def test_lm_checkpoint_from_other_config(tmp_path):
    from dlpipe.models.awd_lstm import AWDLSTMConfig, AWDLSTMLM

    small = AWDLSTMLM(AWDLSTMConfig.make(50, 16, 32, 2, 0.0))
    save_model(tmp_path / "lm.pt", small, small.cfg.to_dict())
    big = AWDLSTMLM(AWDLSTMConfig.make(50, 24, 32, 2, 0.0))
    with pytest.raises(CheckpointMismatch) as e:
        load_model(tmp_path / "lm.pt", big)
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'lm.pt'}: checkpoint does not match the model (")
    assert "shape mismatch: encoder.encoder.weight: checkpoint (50, 16) vs model (50, 24)" in msg
    n = int(msg.split("(", 1)[1].split(" ")[0])
    assert n == msg.count("\n  ") and n >= 3                     # one line per tensor, counted in the header


@pytest.mark.fault("Bad data", "precompute with an index.csv lacking the split column: DataError naming the "
                   "file and the columns expected; nothing written")
def test_precompute_index_missing_column(tmp_path):
    from dlpipe.tasks.transfer.precompute import precompute

    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.csv").write_text("path,label\ntrain/3/1.png,3\n", encoding="utf-8")
    (tmp_path / "raw").mkdir()
    p = tiny_params(tmp_path / "p")
    with pytest.raises(DataError, match=r"index\.csv: missing column\(s\) \['split'\]; expected path,label,split"):
        precompute(src=tmp_path / "raw", index=tmp_path / "index", model=None, out=tmp_path / "out",
                   bb=P.load(BackboneParams, "vision.backbone", p),
                   p=P.load(PrecomputeParams, "vision.precompute.mnist_sample", p),
                   rt=P.load(RuntimeParams, "runtime", p), dataset="mnist_sample")
    assert not (tmp_path / "out").exists()
