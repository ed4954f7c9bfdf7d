"""Text data stages on real data at tiny scale: prepare -> tokenize -> numericalize, and bad inputs."""
from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dlpipe.core.errors import DataError
from dlpipe.text.corpus import iter_token_docs, load_corpus
from dlpipe.text.labelled import read_labelled_csv
from imdb_fixtures import acl_archive, books_archive, sample_dir
from stage_runs import tiny_params
from dlpipe.text.vocab import Vocab
from dlpipe.text.corpora import split_articles

REPO = Path(__file__).resolve().parents[2]


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def test_imdb_prepare_tokenize_numericalize(tmp_path):
    """prepare_imdb -> tokenize@clas (a directory of CSVs) -> numericalize --tok-dir, through the stage CLIs."""
    params = tiny_params(tmp_path / "p", imdb__prepare__n_train=8, imdb__prepare__n_valid=4,
                         imdb__prepare__n_test=10, imdb__prepare__curve=[4], imdb__prepare__max_docs=None)
    acl = acl_archive(tmp_path / "acl.tgz")
    sample = sample_dir(tmp_path / "sample", ["train neg review 5 " + "word " * 5])
    prep, tok, ids = tmp_path / "prepared", tmp_path / "tok", tmp_path / "ids"
    m = _stage("prepare_imdb")([str(acl), str(sample), str(prep), "--params", str(params),
                                "--metrics", str(tmp_path / "m.json")])
    assert (tmp_path / "m.json").is_file() and m["dropped_equal_to_eval"]["clas_pool"] >= 1
    assert sorted(f.name for f in (prep / "clas").glob("*.csv")) == [
        "curve-4.csv", "sample.csv", "test.csv", "train.csv", "valid.csv"]
    for name in ("lm", "clas"):
        tm = _stage("tokenize_text")([str(prep / name), str(tok / name), "--params", str(params)])
        assert tm["train"]["docs"] > 0 and all(t["words_per_s"] > 0 for t in tm.values())
    nm = _stage("numericalize")([str(ids / "lm"), "--tok-dir", str(tok / "lm"), "--params", str(params)])
    _stage("numericalize")([str(ids / "clas"), "--vocab-from", str(ids / "lm" / "itos.json"), "--tok-dir", str(tok / "clas")])
    vocab = Vocab.load(ids / "lm" / "itos.json")
    assert nm["vocab_size"] == len(vocab) and not (ids / "clas" / "itos.json").exists()
    assert sorted(d.name for d in (ids / "clas").iterdir()) == ["curve-4", "sample", "test", "train", "valid"]
    clas = load_corpus(ids / "clas" / "train")
    docs = list(iter_token_docs(tok / "clas" / "train"))
    assert len(clas) == len(docs) == 8 and clas.ids.dtype == np.int32
    assert clas.lengths.tolist() == [len(d) for d in docs]
    assert clas.doc(3).tolist() == vocab.numericalize(docs[3]).tolist()
    assert (clas.stream()[clas.offsets[:-1]] == vocab.stoi["xxbos"]).all()
    assert sorted(set(clas.labels.tolist())) == [0, 1] and (load_corpus(ids / "lm" / "train").labels == 0).all()


def test_lm_corpus_stage_holds_out_whole_articles_and_authors(mirror, tmp_path):
    params = tiny_params(tmp_path / "p", imdb__lm_corpus__heldout_authors=["Shelley, Mary"],
                         imdb__lm_corpus__book_doc_words=10)
    excl = tmp_path / "eval.csv"
    excl.write_text('0,"She had lived nearly Emma years."\n')
    out = tmp_path / "lm_corpus"
    m = _stage("prepare_lm_corpus")([str(out), "--wikitext", str(mirror / "wikitext-2"),
                                     "--gutenberg", str(books_archive(tmp_path / "books.tgz")),
                                     "--exclude", str(excl), "--params", str(params)])
    assert m["valid"]["books"]["docs"] >= 1
    with open(out / "valid.csv", encoding="utf-8", newline="") as fh:
        valid = list(csv.reader(fh))
    with open(out / "train.csv", encoding="utf-8", newline="") as fh:
        train = list(csv.reader(fh))
    wiki_valid = [t for lab, t in valid if lab == "0"]
    assert len(wiki_valid) == 2 and all(v.startswith("= ") for v in wiki_valid)
    assert not {t for _, t in valid} & {t for _, t in train}
    assert not any("Frankenstein" in t for _, t in train) and any("Frankenstein" in t for _, t in valid)
    assert not any(t == "She had lived nearly Emma years." for _, t in train + valid)
    assert not any("@-@" in t or "<unk>" in t for _, t in train + valid)


def test_split_articles_on_level_one_headings():
    lines = [" \n", " = Alpha = \n", " \n", " text a @-@ b \n", " = = Section = = \n", " more \n",
             " = Beta = \n", " text <unk> \n"]
    assert split_articles(lines) == ["= Alpha =\ntext a-b\n= = Section = =\nmore", "= Beta =\ntext xxunk"]


# ---- CSV validation: every bad input names the file and the row --------------------------------

@pytest.mark.parametrize("train,match", [
    (b'0,"ok"\n1\n', r"train\.csv: row 2 \(line 2\): expected 2 columns \(label,text\), got 1"),
    (b'0,"ok"\n1,"ok",extra\n', r"train\.csv: row 2 \(line 2\): expected 2 columns \(label,text\), got 3"),
    (b"", r"train\.csv: no rows"),
    (b'0,"ok"\n1,"caf\xe9"\n', r"train\.csv: row 2: not UTF-8"),
    (b'0,"multi\nline"\n1,"  "\n', r"train\.csv: row 2 \(line 3\): empty text"),
    (b'0,"ok"\n2,"bad"\n', r"train\.csv: row 2 \(line 2\): label '2' is not a class"),
    (b'0,"ok"\nmaybe,"bad"\n', r"train\.csv: row 2 \(line 2\): label 'maybe' is not a class"),
])
@pytest.mark.fault("Bad data", "bad labelled CSV (columns, no rows, non-UTF-8, empty text, label not in classes.txt): DataError naming file and row")
def test_labelled_csv_rejects_bad_rows(tmp_path, train, match):
    (tmp_path / "train.csv").write_bytes(train)
    with pytest.raises(DataError, match=match):
        read_labelled_csv(tmp_path / "train.csv", ["negative", "positive"])


def test_labelled_csv_accepts_class_names(tmp_path):
    (tmp_path / "train.csv").write_text('positive,"good"\n0,"bad"\nnegative,"meh"\n')
    assert read_labelled_csv(tmp_path / "train.csv", ["negative", "positive"]) == [(1, "good"), (0, "bad"), (0, "meh")]
