"""Text data stages on real data at tiny scale: prepare -> tokenize -> numericalize, and bad inputs."""
from __future__ import annotations

import importlib.util
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from dlpipe.core.errors import DataError
from dlpipe.text.corpus import iter_token_docs, load_corpus
from dlpipe.tasks.ulmfit.params import PrepareParams
from dlpipe.tasks.ulmfit.prepare import prepare_imdb
from dlpipe.text.vocab import Vocab
from dlpipe.text.corpora import split_articles

REPO = Path(__file__).resolve().parents[2]


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


@pytest.fixture(scope="module")
def tiny_params(tmp_path_factory) -> Path:
    from dlpipe.scales import apply_scale

    p = tmp_path_factory.mktemp("params") / "params.yaml"
    shutil.copy(REPO / "params.yaml", p)
    apply_scale(p, "tiny", REPO / "scales")
    return p


@pytest.fixture(scope="module")
def imdb_raw(mirror, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("raw")
    with tarfile.open(mirror / "imdb_sample" / "imdb_sample.tgz") as tf:
        tf.extractall(dest, filter="data")
    return dest / "imdb_sample"


def test_imdb_prepare_tokenize_numericalize(imdb_raw, tiny_params, tmp_path):
    prep, tok = tmp_path / "prepared", tmp_path / "tok"
    m = _stage("prepare_imdb")([str(imdb_raw), str(prep), "--params", str(tiny_params),
                                "--metrics", str(tmp_path / "m.json")])
    assert (tmp_path / "m.json").is_file() and m["clas_train"] == 40 and m["lm_train"] + m["lm_valid"] == 40
    valid_texts = {line for line in (prep / "clas" / "valid.csv").read_text(encoding="utf-8").splitlines()}
    lm_text = (prep / "lm" / "train.csv").read_text(encoding="utf-8") + (prep / "lm" / "valid.csv").read_text(encoding="utf-8")
    assert not any(t.split(",", 1)[1] in lm_text for t in valid_texts if len(t) > 80)  # no held-out review in the LM set
    for split in ("lm/train", "lm/valid", "clas/train", "clas/valid"):
        tm = _stage("tokenize_text")([str(prep / f"{split}.csv"), str(tok / split), "--params", str(tiny_params)])
        assert tm["docs"] > 0 and tm["words_per_s"] > 0
    out = tmp_path / "ids"
    nm = _stage("numericalize")([str(out / "lm"), "--split", f"train={tok}/lm/train", "--split",
                                 f"valid={tok}/lm/valid", "--params", str(tiny_params)])
    _stage("numericalize")([str(out / "clas"), "--vocab-from", str(out / "lm" / "itos.json"),
                            "--split", f"train={tok}/clas/train", "--split", f"valid={tok}/clas/valid"])
    vocab = Vocab.load(out / "lm" / "itos.json")
    assert nm["vocab_size"] == len(vocab) and not (out / "clas" / "itos.json").exists()
    clas = load_corpus(out / "clas" / "train")
    docs = list(iter_token_docs(tok / "clas" / "train"))
    assert len(clas) == len(docs) == 40 and clas.ids.dtype == np.int32
    assert clas.lengths.tolist() == [len(d) for d in docs]
    assert clas.doc(3).tolist() == vocab.numericalize(docs[3]).tolist()
    assert (clas.stream()[clas.offsets[:-1]] == vocab.stoi["xxbos"]).all()
    assert sorted(set(clas.labels.tolist())) == [0, 1] and (load_corpus(out / "lm" / "train").labels == 0).all()


def test_lm_corpus_stage_holds_out_whole_articles(mirror, tiny_params, tmp_path):
    out = tmp_path / "lm_corpus"
    m = _stage("prepare_lm_corpus")([str(out), "--wikitext", str(mirror / "wikitext-2"),
                                     "--shakespeare", str(mirror / "tinyshakespeare" / "input.txt"),
                                     "--multi30k", str(mirror / "multi30k_en_fr"), "--params", str(tiny_params)])
    assert m["valid"]["docs"] == 2 and m["train/tinyshakespeare"]["docs"] == 10
    import csv
    with open(out / "valid.csv", encoding="utf-8", newline="") as fh:
        valid = [r[1] for r in csv.reader(fh)]
    with open(out / "train.csv", encoding="utf-8", newline="") as fh:
        train = [r[1] for r in csv.reader(fh)]
    assert all(v.startswith("= ") and v not in train for v in valid)
    assert not any("@-@" in t or "<unk>" in t for t in train + valid)


def test_split_articles_on_level_one_headings():
    lines = [" \n", " = Alpha = \n", " \n", " text a @-@ b \n", " = = Section = = \n", " more \n",
             " = Beta = \n", " text <unk> \n"]
    assert split_articles(lines) == ["= Alpha =\ntext a-b\n= = Section = =\nmore", "= Beta =\ntext xxunk"]


# ---- CSV validation: every bad input names the file and the row --------------------------------

def _raw(tmp_path, train: bytes, classes: str = "negative\npositive\n") -> Path:
    d = tmp_path / "raw"
    d.mkdir()
    (d / "train.csv").write_bytes(train)
    (d / "valid.csv").write_bytes(b'0,"fine review"\n')
    (d / "classes.txt").write_text(classes)
    return d


P = PrepareParams(split_seed=0, lm_valid_pct=0.1, n_train=None, max_docs=None, include_unsup=True,
                  include_test_texts=False)


@pytest.mark.parametrize("train,match", [
    (b'0,"ok"\n1\n', r"train\.csv: row 2 \(line 2\): expected 2 columns \(label,text\), got 1"),
    (b'0,"ok"\n1,"ok",extra\n', r"train\.csv: row 2 \(line 2\): expected 2 columns \(label,text\), got 3"),
    (b"", r"train\.csv: no rows"),
    (b'0,"ok"\n1,"caf\xe9"\n', r"train\.csv: row 2: not UTF-8"),
    (b'0,"multi\nline"\n1,"  "\n', r"train\.csv: row 2 \(line 3\): empty text"),
    (b'0,"ok"\n2,"bad"\n', r"train\.csv: row 2 \(line 2\): label '2' is not a class"),
    (b'0,"ok"\nmaybe,"bad"\n', r"train\.csv: row 2 \(line 2\): label 'maybe' is not a class"),
])
@pytest.mark.fault("Bad data", "bad IMDb CSV (columns, no rows, non-UTF-8, empty text, label not in classes.txt): DataError naming file and row; nothing written")
def test_prepare_rejects_bad_csv(tmp_path, train, match):
    with pytest.raises(DataError, match=match):
        prepare_imdb(src=_raw(tmp_path, train), out=tmp_path / "out", p=P)
    assert not (tmp_path / "out").exists()


def test_prepare_accepts_class_names_and_balances_n_train(tmp_path):
    rows = b"".join(f'{"positive" if i % 3 else "negative"},"review {i}"\n'.encode() for i in range(30))
    m = prepare_imdb(src=_raw(tmp_path, rows), out=tmp_path / "out", p=PrepareParams(**{**P.__dict__, "n_train": 6}))
    assert m["clas_train_per_class"] == {"negative": 3, "positive": 3} and m["lm_train"] + m["lm_valid"] == 30


def test_prepare_reads_full_imdb_folders(tmp_path):
    for sub, texts in {"train/neg": ["bad", "awful"], "train/pos": ["good", "great"], "test/neg": ["meh"],
                       "test/pos": ["fine"], "unsup": ["who knows", "maybe", "perhaps"]}.items():
        (tmp_path / "imdb" / sub).mkdir(parents=True)
        for i, t in enumerate(texts):
            (tmp_path / "imdb" / sub / f"{i}_1.txt").write_text(t)
    m = prepare_imdb(src=tmp_path / "imdb", out=tmp_path / "out", p=P)
    assert (m["clas_train"], m["clas_valid"], m["lm_train"] + m["lm_valid"]) == (4, 2, 7)
    assert (tmp_path / "out" / "clas" / "classes.txt").read_text() == "neg\npos\n"
    lm = (tmp_path / "out" / "lm" / "train.csv").read_text() + (tmp_path / "out" / "lm" / "valid.csv").read_text()
    assert "meh" not in lm and "fine" not in lm  # include_test_texts: false
