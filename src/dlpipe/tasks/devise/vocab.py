"""DeViSE, stage ``devise_vocab``: the class names matched to the LM's vocabulary, as word vectors.

::

    itos.json + embeddings.npy (the ULMFiT LM's) + class names -> class_vectors.npy, classes.json, vocab_match.md
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from dlpipe.core.atomic import write_text
from dlpipe.core.errors import DataError
from dlpipe.io.arrays import open_store, save_npy
from dlpipe.plots import md_table
from dlpipe.tasks.devise.params import VocabParams
from dlpipe.vision.devise import class_vectors, explain_miss, match_class


def read_vocab(itos_path: Path, emb_path: Path) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """(itos, embeddings (vocab, emb_sz), lower-cased stoi where the most frequent casing wins).

    itos is in frequency order, so the first (lower-cased) occurrence of a word is its most
    common casing (the 2017 lesson 9 rule).
    """
    itos = json.loads(Path(itos_path).read_text())
    emb = np.load(emb_path)
    if emb.ndim != 2 or emb.shape[0] != len(itos):
        raise DataError(f"{emb_path}: expected embeddings of shape ({len(itos)}, emb_sz) to match {itos_path}, "
                        f"got {emb.shape}")
    stoi: dict[str, int] = {}
    for i, w in enumerate(itos):
        stoi.setdefault(w.lower(), i)
    return itos, emb.astype(np.float32), stoi


def vocab(*, itos: Path, emb: Path, features: Path, out_dir: Path, report: Path, p: VocabParams) -> dict:
    """Match the feature store's class names to the vocabulary; write class_vectors.npy + the match report."""
    itos_path, emb_path = itos, emb
    itos, emb, stoi = read_vocab(itos_path, emb_path)
    classes = list(open_store(Path(features) / "train").meta["classes"])
    unknown = sorted(set(p.class_words) - set(classes))
    if unknown:
        raise DataError(f"params.yaml: vision.devise.vocab.class_words: {unknown} are not classes of {features} ({classes})")
    matches = [match_class(c, list(p.class_words.get(c, [])), stoi) for c in classes]
    rows = [(m.name, ", ".join(m.tried), m.phrase or "—", " ".join(m.tokens) or "—", "yes" if m.matched else "**no**")
            for m in matches]
    n_ok = sum(m.matched for m in matches)
    text = (f"# DeViSE: class names matched to the LM vocabulary\n\n"
            f"Vocabulary: {len(itos):,} tokens, {emb.shape[1]}-d embeddings of the ULMFiT LM (`{emb_path}`).\n"
            f"Matched **{n_ok} of {len(classes)}** classes ({len(classes) - n_ok} unmatched). Rules: lower-case; "
            "try the word, its singular, its plural; a multi-word phrase is the mean of its words and needs all "
            "of them; candidates come from `vision.devise.vocab.class_words` (default: the class name).\n"
            "(The 2018 lecture matched 49,469 WordNet synsets against fastText's vocabulary.)\n\n"
            + md_table(["class", "candidates tried", "phrase used", "tokens", "matched"], rows))
    write_text(report, text)
    missed = [f"class '{m.name}': vision.devise.vocab.class_words.{m.name} tried {explain_miss(m, stoi)}"
              for m in matches if not m.matched]
    where = f"the LM vocabulary {itos_path} ({len(itos):,} tokens)"
    if n_ok < 2:
        raise DataError(f"params.yaml: vision.devise.vocab.class_words: only {n_ok} of the {len(classes)} classes "
                        f"{classes} have a word in {where}; DeViSE needs two or more. {'; '.join(missed)}. "
                        f"List words the vocabulary has under those keys (match report: {report})")
    shared = _shared_tokens([m for m in matches if m.matched])
    if shared:
        raise DataError(f"params.yaml: vision.devise.vocab.class_words: {shared}: identical word vectors cannot tell "
                        "classes apart; give each class its own words")
    if missed:   # the lecture's rule: classes without a word vector are left out, loudly
        warnings.warn(f"{len(missed)} of {len(classes)} classes have no word in {where}; their images are left "
                      f"out of DeViSE: {'; '.join(missed)}", stacklevel=2)
    vecs = np.zeros((len(classes), emb.shape[1]), np.float32)   # unmatched classes: zero rows, never used
    ok = [i for i, m in enumerate(matches) if m.matched]
    vecs[ok] = class_vectors([matches[i] for i in ok], emb, stoi)
    out_dir = Path(out_dir)
    save_npy(out_dir / "class_vectors.npy", vecs)
    write_text(out_dir / "classes.json", json.dumps({"classes": classes, "matched": [m.matched for m in matches],
                                                     "tokens": [list(m.tokens) for m in matches]}, indent=2) + "\n")
    return {"n_classes": len(classes), "n_matched": n_ok, "n_unmatched": len(classes) - n_ok,
            "vocab_size": len(itos), "emb_sz": int(emb.shape[1])}


def _shared_tokens(matches: list) -> str:
    """Names the first two matched classes with the same words (hence the same vector), else ''."""
    seen: dict[tuple[str, ...], str] = {}
    for m in matches:
        key = tuple(sorted(m.tokens))
        if key in seen:
            return f"classes '{seen[key]}' and '{m.name}' both use the words {' '.join(m.tokens)!r}"
        seen[key] = m.name
    return ""


def read_class_vectors(vectors_dir: Path) -> tuple[dict, np.ndarray]:
    """(classes.json, class_vectors.npy) from the vocab stage."""
    info = json.loads((Path(vectors_dir) / "classes.json").read_text())
    return info, np.load(Path(vectors_dir) / "class_vectors.npy")


def matched_rows(store, matched: list[bool]) -> np.ndarray:
    """Store rows whose class has a word vector (images of unmatched classes are left out)."""
    return np.flatnonzero(np.asarray(matched)[store.labels])


