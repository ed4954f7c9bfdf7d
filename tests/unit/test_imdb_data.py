"""ULMFiT's data on the full aclImdb and Gutenberg: readers, marker stripping, dedupe against the
evaluation texts, class-balanced nested label budgets, held-out authors — on archives built here."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from dlpipe.core.errors import DataError
from dlpipe.tasks.ulmfit.corpus import BOOKS, WIKI, prepare_lm_corpus, split_books
from dlpipe.tasks.ulmfit.params import LMCorpusParams, PrepareParams
from dlpipe.tasks.ulmfit.prepare import balanced_order, cap_words, prepare_imdb
from dlpipe.text.corpora import book_documents, gutenberg_body, paragraphs, read_aclimdb, read_gutenberg
from dlpipe.text.labelled import drop_equal, normalize_space, read_labelled_csv
from imdb_fixtures import BOOK, acl_archive, books_archive, sample_dir, tar_gz

fault = partial(pytest.mark.fault, "Bad data")


def test_gutenberg_body_drops_header_and_licence():
    body = gutenberg_body(BOOK, "emma")
    assert body.startswith("CHAPTER I") and body.endswith("twenty-one years.")
    assert "Header" not in body and "Licence" not in body and "\r" not in body
    assert paragraphs(body) == ["CHAPTER I", "Emma Woodhouse, handsome, clever, and rich.", "She had lived nearly twenty-one years."]


@fault("a Gutenberg book without its START/END markers: DataError naming the archive member")
def test_book_without_markers_is_named(tmp_path):
    arch = tar_gz(tmp_path / "b.tgz", {"Austen, Jane/Emma.txt": BOOK, "Poe, Edgar Allan/Raven.txt": "no markers here"})
    with pytest.raises(DataError, match=r"b\.tgz: Poe, Edgar Allan/Raven\.txt: expected a '\*\*\* START OF"):
        read_gutenberg(arch, progress=False)


@pytest.mark.parametrize("words,expected", [
    (1, 3),     # every paragraph closes a document
    (4, 2),     # "CHAPTER I" + the 7-word paragraph, then the rest
    (100, 1),   # the whole book
])
def test_book_documents_are_whole_paragraphs(words, expected):
    docs = book_documents(gutenberg_body(BOOK, "emma"), words)
    assert len(docs) == expected and " ".join(" ".join(docs).split()) == " ".join(paragraphs(gutenberg_body(BOOK, "e")))


@pytest.mark.parametrize("text,norm", [
    ("A  fine\tfilm.\n", "A fine film."),
    ("  leading and trailing  ", "leading and trailing"),
    ("line\r\nbreaks<br /><br />kept", "line breaks<br /><br />kept"),   # markup is text: only whitespace folds
    ("", ""),
])
def test_normalize_space(text, norm):
    assert normalize_space(text) == norm


@pytest.mark.parametrize("rows,banned,kept,n_drop", [
    ([(0, "a fine film"), (1, "dull")], {"a fine film"}, [(1, "dull")], 1),
    ([(0, "a  fine\nfilm ")], {"a fine film"}, [], 1),                  # equal after whitespace folding
    ([(0, "A fine film")], {"a fine film"}, [(0, "A fine film")], 0),   # case is not whitespace: kept
    ([(0, "a fine film!")], {"a fine film"}, [(0, "a fine film!")], 0),  # a substring is not equal
    ([], {"x"}, [], 0),
])
def test_drop_equal(rows, banned, kept, n_drop):
    assert drop_equal(rows, banned) == (kept, n_drop)


def test_balanced_order_prefixes_are_balanced_nested_and_seeded():
    rows = [(i % 2, f"r{i}") for i in range(40)] + [(0, f"extra{i}") for i in range(10)]
    a, b = balanced_order(rows, np.random.default_rng(1)), balanced_order(rows, np.random.default_rng(1))
    assert a == b and sorted(a) == sorted(rows)
    for n in (2, 10, 40):
        assert [lab for lab, _ in a[:n]].count(0) == n // 2
    assert balanced_order(rows, np.random.default_rng(2)) != a


def test_cap_words_keeps_whole_texts_in_order():
    texts = [f"w{i} " * 10 for i in range(20)]
    kept = cap_words(texts, 55, np.random.default_rng(0))
    assert len(kept) == 6 and kept == sorted(kept, key=texts.index) and all(t in texts for t in kept)
    assert cap_words(texts, None, np.random.default_rng(0)) == texts


def test_read_aclimdb(tmp_path):
    revs = read_aclimdb(acl_archive(tmp_path / "acl.tgz"), progress=False)
    assert len(revs) == 54 and {(r.split, r.label) for r in revs} == {
        ("train", "pos"), ("train", "neg"), ("test", "pos"), ("test", "neg"), ("train", "unsup")}
    assert next(r for r in revs if r.split == "test" and r.label == "neg" and r.id == 3).rating == 2


def test_prepare_imdb_sets_are_balanced_disjoint_and_free_of_eval_texts(tmp_path):
    acl = acl_archive(tmp_path / "acl.tgz")
    sample = sample_dir(tmp_path / "sample", ["train neg review 5 " + "word " * 5])
    p = PrepareParams(split_seed=0, n_train=8, n_valid=4, n_test=10, curve=[2, 4, 8], lm_max_words=None,
                      lm_valid_pct=0.2, include_unsup=True, max_docs=None)
    m = prepare_imdb(acl=acl, sample=sample, out=tmp_path / "out", p=p)
    read = lambda name: read_labelled_csv(tmp_path / "out" / f"{name}.csv", ["neg", "pos"])  # noqa: E731
    test, smp = read("clas/test"), read("clas/sample")
    banned = {normalize_space(t) for _, t in test + smp}
    trained = {name: read(name) for name in ("clas/train", "clas/valid", "clas/curve-2", "clas/curve-4",
                                             "clas/curve-8", "lm/train", "lm/valid")}
    for name, rows in trained.items():                 # no model learns from an evaluation text
        assert not {normalize_space(t) for _, t in rows} & banned, name
    assert m["dropped_equal_to_eval"]["clas_pool"] >= 1 and m["dropped_equal_to_eval"]["lm"] >= 1
    assert len(test) == 10 and [lab for lab, _ in test].count(1) == 5
    for n in (2, 4, 8):                                # balanced although an eval text was dropped from the pool
        curve = trained[f"clas/curve-{n}"]
        assert len(curve) == n and [lab for lab, _ in curve].count(1) == n // 2
    assert trained["clas/curve-4"][:2] == trained["clas/curve-2"]                # nested budgets
    assert trained["clas/train"] == trained["clas/curve-8"]
    assert not {t for _, t in trained["clas/valid"]} & {t for _, t in trained["clas/train"]}
    train_texts = {r.text for r in read_aclimdb(acl, progress=False) if r.split == "train"}
    assert {t for _, t in trained["lm/train"] + trained["lm/valid"]} <= train_texts        # no test-split text
    again = prepare_imdb(acl=acl, sample=sample, out=tmp_path / "again", p=p)
    assert again == m and read_labelled_csv(tmp_path / "again/clas/train.csv", ["neg", "pos"]) == trained["clas/train"]


@fault("prepare_imdb asked for more labelled reviews than exist: DataError naming the key")
def test_prepare_imdb_too_many_labels(tmp_path):
    p = PrepareParams(split_seed=0, n_train=100, n_valid=4, n_test=10, curve=[2], lm_max_words=None,
                      lm_valid_pct=0.2, include_unsup=True, max_docs=None)
    with pytest.raises(DataError, match="imdb.prepare: n_train asks for 100 reviews, only"):
        prepare_imdb(acl=acl_archive(tmp_path / "acl.tgz"), sample=sample_dir(tmp_path / "s", ["x"]),
                     out=tmp_path / "out", p=p)
    assert not (tmp_path / "out").exists()


def lm_params(**kw) -> LMCorpusParams:
    base = dict(split_seed=0, wikitext_train=["wiki.valid.tokens"], heldout_from="wiki.valid.tokens",
                n_heldout_articles=1, gutenberg=True, heldout_authors=["Shelley, Mary"], book_doc_words=5,
                max_words=None, valid_max_words=None, max_docs=None)
    return LMCorpusParams(**{**base, **kw})


def test_held_out_authors_never_reach_training(tmp_path):
    held, train = split_books(books_archive(tmp_path / "b.tgz"), lm_params(), np.random.default_rng(0))
    assert held and train and not set(held) & set(train)
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / "wiki.valid.tokens").write_text(" = One = \n a first article text \n = Two = \n a second article \n")
    m = prepare_lm_corpus(wikitext=wt, out=tmp_path / "corpus", p=lm_params(), gutenberg=tmp_path / "b.tgz")
    tr = read_labelled_csv(tmp_path / "corpus/train.csv", ["0", "1"])
    va = read_labelled_csv(tmp_path / "corpus/valid.csv", ["0", "1"])
    assert {lab for lab, _ in va} == {WIKI, BOOKS} and not any("Frankenstein" in t for _, t in tr)
    assert any("Frankenstein" in t for lab, t in va if lab == BOOKS)
    assert m["valid"]["books"]["docs"] == len([1 for lab, _ in va if lab == BOOKS])


@fault("imdb.lm_corpus.heldout_authors names an author with no book in the archive: DataError listing the authors")
def test_unknown_heldout_author(tmp_path):
    with pytest.raises(DataError, match=r"heldout_authors: \['Bronte'\] wrote none of the books"):
        split_books(books_archive(tmp_path / "b.tgz"), lm_params(heldout_authors=["Bronte"]), np.random.default_rng(0))
