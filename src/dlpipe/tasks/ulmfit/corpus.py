"""The pretraining corpus: WikiText articles and Project Gutenberg books as ``label,text`` CSVs, the
label naming the source (0 WikiText, 1 books) so the held-out perplexity can be reported per source.

Output (``out``): ``train.csv`` and ``valid.csv``, one article/document per row. ``valid`` is a
seeded set of whole WikiText articles from one file plus every book of the held-out authors (a
novel may exist in several editions under different EBook numbers, so holding out whole authors
keeps every edition of a held-out book out of training). No IMDb text is used, and any text equal
to an evaluation review is dropped all the same (counted in the metrics).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlpipe.core.atomic import atomic_dir
from dlpipe.core.errors import DataError
from dlpipe.tasks.ulmfit.params import LMCorpusParams
from dlpipe.tasks.ulmfit.prepare import cap_words
from dlpipe.text.corpora import book_documents, read_gutenberg, read_wikitext
from dlpipe.text.labelled import drop_equal, normalize_space, read_labelled_csv, seeded_subset, write_label_csv

WIKI, BOOKS = 0, 1


def split_wikitext(wt: Path, p: LMCorpusParams, rng) -> tuple[list[str], dict[str, list[str]]]:
    """(held-out articles, train articles per file)."""
    pool = read_wikitext(wt / p.heldout_from)
    n_held = len(pool) if p.n_heldout_articles is None else min(p.n_heldout_articles, len(pool) - 1)
    held = set(rng.choice(len(pool), size=n_held, replace=False).tolist())
    valid = seeded_subset([a for i, a in enumerate(pool) if i in held], p.max_docs, rng)
    train = {}
    for name in p.wikitext_train:
        arts = [a for i, a in enumerate(pool) if i not in held] if name == p.heldout_from else read_wikitext(wt / name)
        train[name] = seeded_subset(arts, p.max_docs, rng)
    return valid, train


def split_books(archive: Path, p: LMCorpusParams, rng) -> tuple[list[str], list[str]]:
    """(documents of the held-out authors' books, documents of every other book)."""
    books = read_gutenberg(archive)
    authors = {b.author for b in books}
    unknown = sorted(set(p.heldout_authors) - authors)
    if unknown:
        raise DataError(f"params.yaml: imdb.lm_corpus.heldout_authors: {unknown} wrote none of the books in "
                        f"{archive} (authors: {sorted(authors)})")
    docs = {held: [d for b in books if (b.author in p.heldout_authors) == held for d in book_documents(b.body, p.book_doc_words)]
            for held in (True, False)}
    return seeded_subset(docs[True], p.max_docs, rng), seeded_subset(docs[False], p.max_docs, rng)


def eval_texts(csvs) -> set[str]:
    """Normalised texts of the evaluation CSVs (prepare_imdb's clas/test.csv, clas/sample.csv)."""
    return {normalize_space(t) for f in csvs for _, t in read_labelled_csv(Path(f), ["neg", "pos"])}


def prepare_lm_corpus(*, wikitext: str | os.PathLike, out: str | os.PathLike, p: LMCorpusParams,
                      gutenberg: str | os.PathLike | None = None, exclude=()) -> dict:
    """Build ``train.csv``/``valid.csv`` of the pretraining corpus in ``out`` (atomically).

    Returns:
        metrics: documents and words per source and split, texts dropped as equal to evaluation texts.
    """
    rng = np.random.default_rng(p.split_seed)
    valid_wiki, train_wiki = split_wikitext(Path(wikitext), p, rng)
    sources = {name: (WIKI, docs) for name, docs in train_wiki.items()}
    valid = [(WIKI, t) for t in valid_wiki]
    if p.gutenberg:
        if gutenberg is None:
            raise DataError("imdb.lm_corpus.gutenberg is true but the stage got no --gutenberg archive")
        held, books = split_books(Path(gutenberg), p, rng)
        held = cap_words(held, p.valid_max_words, rng)
        sources["gutenberg"], valid = (BOOKS, books), valid + [(BOOKS, t) for t in held]
    rows = [(label, t) for label, docs in sources.values() for t in docs]
    keep = set(cap_words([t for _, t in rows], p.max_words, rng))
    banned = eval_texts(exclude)
    train, n_drop = drop_equal([r for r in rows if r[1] in keep], banned)
    valid, n_drop_valid = drop_equal(valid, banned)
    with atomic_dir(out) as tmp:
        write_label_csv(tmp / "train.csv", train)
        write_label_csv(tmp / "valid.csv", valid)
    words = lambda docs: sum(len(t.split()) for t in docs)  # noqa: E731
    m = {f"train/{k}": {"docs": sum(t in keep for t in docs), "words": words(t for t in docs if t in keep)}
         for k, (_, docs) in sources.items()}
    m["train"] = {"docs": len(train), "words": words(t for _, t in train)}
    m["valid"] = {src: {"docs": sum(1 for lab, _ in valid if lab == code), "words": words(t for lab, t in valid if lab == code)}
                  for src, code in (("wikitext", WIKI), ("books", BOOKS)) if any(lab == code for lab, _ in valid)}
    m["dropped_equal_to_eval"] = n_drop + n_drop_valid
    return m
