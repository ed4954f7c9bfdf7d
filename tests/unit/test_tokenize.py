"""Tokenization end to end (rules + spaCy), the token-store format, and determinism across workers."""
import csv
import hashlib

import numpy as np
import pytest

from dlpipe.core.errors import DataError
from dlpipe.text.corpus import encode_tokens, iter_token_docs, load_token_meta
from dlpipe.text.rules import SPECIALS
from dlpipe.text.tokenize import TokenizeParams, make_tokenizer, tokenize_csv, tokenize_texts


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.mark.parametrize("text,expected", [
    ("This movie is AWESOME!!!! I loved it.",
     "xxbos xxmaj this movie is xxup awesome xxrep 4 ! i loved it ."),
    ("Great film.<br /><br />Don't miss it.",
     "xxbos xxmaj great film . \n\n xxmaj do n't miss it ."),
    ("It was so so so bad... 1/10", "xxbos xxmaj it was xxwrep 3 so bad … 1 / 10"),
    ("McDonald's ad, by the USA", "xxbos mcdonald 's ad , by the xxup usa"),
])
def test_real_sentences(tok, text, expected):
    assert tokenize_texts([text], tok) == [expected.split(" ")]


def test_in_token_spaces_become_lowline(tok):
    # spaCy keeps a space after a newline inside one whitespace token; fastai's replace_space
    assert tokenize_texts(["Hi.\n  there"], tok) == [["xxbos", "xxmaj", "hi", ".", "\n▁", "there"]]


def test_specials_are_never_split(tok):
    # fastai registers them as spaCy special cases; we rely on spaCy not splitting them anyway
    import spacy
    from spacy.symbols import ORTH

    ref = spacy.blank("en").tokenizer
    for w in SPECIALS:
        ref.add_special_case(w, [{ORTH: w}])
    texts = [f"({w}), {w}'s {w}-{w}. \"{w}\" {w}!{w} #{w}" for w in SPECIALS]
    assert [[t.text for t in d] for d in tok.pipe(texts)] == [[t.text for t in d] for d in ref.pipe(texts)]


def _write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return path


def _digest(d):
    return {f: hashlib.sha256((d / f).read_bytes()).hexdigest() for f in ("tokens.bin", "lengths.npy", "labels.npy")}


@pytest.fixture(scope="module")
def imdb_rows(mirror, tmp_path_factory):
    import tarfile

    dest = tmp_path_factory.mktemp("imdb")
    with tarfile.open(mirror / "imdb_sample" / "imdb_sample.tgz") as tf:
        tf.extractall(dest, filter="data")
    with open(dest / "imdb_sample" / "valid.csv", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))[:60]


@pytest.mark.parametrize("start_method", [
    "fork",
    pytest.param("spawn", marks=pytest.mark.slow),  # each worker imports spaCy afresh: ~10 s under load
])
@pytest.mark.fault("Determinism", "tokenize with 1 or 2 workers: byte-identical token store")
def test_tokenize_is_byte_identical_across_workers(imdb_rows, tmp_path, start_method):
    src = _write_csv(tmp_path / "in.csv", imdb_rows)
    tokenize_csv(src, tmp_path / "w1", TokenizeParams(n_workers=1, chunk_size=7))
    m2 = tokenize_csv(src, tmp_path / "w2", TokenizeParams(n_workers=2, chunk_size=7), start_method=start_method)
    assert _digest(tmp_path / "w1") == _digest(tmp_path / "w2") and m2["docs"] == len(imdb_rows)


def test_token_store_round_trip_and_chunking(imdb_rows, tmp_path, tok):
    src = _write_csv(tmp_path / "in.csv", imdb_rows)
    m1 = tokenize_csv(src, tmp_path / "w1", TokenizeParams(n_workers=1, chunk_size=7))
    m3 = tokenize_csv(src, tmp_path / "big", TokenizeParams(n_workers=1, chunk_size=1000))
    assert _digest(tmp_path / "w1") == _digest(tmp_path / "big")
    docs = list(iter_token_docs(tmp_path / "w1"))
    assert docs == tokenize_texts([r[1] for r in imdb_rows], tok)
    lengths, labels = load_token_meta(tmp_path / "w1")
    assert lengths.tolist() == [len(d) for d in docs]
    assert labels.tolist() == [int(r[0]) for r in imdb_rows]
    assert m1["docs"] == len(imdb_rows) and m1["tokens"] == int(lengths.sum())
    assert m1["words"] == sum(len(r[1].split()) for r in imdb_rows) and m3["unk_tokens"] == 0


def test_unk_metrics_and_multi_field_rows(tmp_path):
    src = _write_csv(tmp_path / "in.csv", [["0", "a <unk> <unk> b", "second field"], ["1", "clean"], ["0", "<unk>"]])
    m = tokenize_csv(src, tmp_path / "out", TokenizeParams(n_workers=1, chunk_size=10))
    docs = list(iter_token_docs(tmp_path / "out"))
    assert docs[0] == "xxbos xxfld 1 a xxunk xxunk b xxfld 2 second field".split()
    assert (m["unk_tokens"], m["docs_with_unk"]) == (3, 2)


def test_reader_handles_block_boundaries(tmp_path, monkeypatch):
    import dlpipe.text.corpus as corpus

    monkeypatch.setattr(corpus, "_READ_BYTES", 3)  # split tokens (and UTF-8 characters) across reads
    docs = [["xxbos", "héllo", "wörld"], ["xxbos"], ["xxbos", "…", "\n▁"]]
    (tmp_path / "tokens.bin").write_bytes(encode_tokens(docs))
    np.save(tmp_path / "lengths.npy", np.array([3, 1, 3]))
    np.save(tmp_path / "labels.npy", np.zeros(3, dtype=np.int64))
    assert list(iter_token_docs(tmp_path)) == docs


@pytest.mark.parametrize("rows,match", [
    ([["0", "ok"], ["x", "bad label"]], r"in\.csv: line 2: label must be an integer"),
    ([["0", "ok"], ["1"]], r"in\.csv: line 2: expected 'label,text'"),
])
@pytest.mark.fault("Bad data", "tokenize CSV with a non-integer label or no text column: DataError naming file and line; no token store")
def test_tokenize_rejects_bad_rows(tmp_path, rows, match):
    src = _write_csv(tmp_path / "in.csv", rows)
    with pytest.raises(DataError, match=match):
        tokenize_csv(src, tmp_path / "out", TokenizeParams(n_workers=1, chunk_size=10))
    assert not (tmp_path / "out").exists()  # atomic: nothing half-written


@pytest.mark.fault("Bad data", "tokenize an empty CSV: DataError 'no rows'")
def test_tokenize_rejects_empty_csv(tmp_path):
    (tmp_path / "in.csv").write_text("")
    with pytest.raises(DataError, match="no rows"):
        tokenize_csv(tmp_path / "in.csv", tmp_path / "out", TokenizeParams(n_workers=1, chunk_size=10))
