"""DeViSE (Frome et al. 2013; fast.ai 2018 lesson 11): images mapped into word-vector space.

A head regresses the word vector of each image's class name with a cosine loss; images and words
are then compared by cosine similarity, so the model can name an image with ANY vocabulary word
(image -> words) and find images for a word (text -> images).

Class names become vectors by :func:`match_class`: lower-case, try the word, its singular and
its plural; a multi-word name is the mean of its words' vectors (all words must match). A
params mapping gives candidate phrases per class (synonyms for a class like "wild").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - cos(pred, target)`` over the batch: 0 identical, 1 orthogonal, 2 opposite."""
    return (1 - F.cosine_similarity(pred, target, dim=1, eps=1e-8)).mean()


def cosine_sim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity (a metric for the learner)."""
    return F.cosine_similarity(pred, target, dim=1, eps=1e-8).mean()


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def topk_cosine(queries: torch.Tensor, keys: torch.Tensor, k: int,
                chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` keys by cosine similarity for every query, scanning ``keys`` in chunks.

    Args:
        queries: (nq, d); keys: (nk, d). Neither needs to be normalised.
        chunk: keys per matrix product, so memory is (nq, chunk) whatever the vocabulary size.
    Returns:
        (scores, indices), each (nq, min(k, nk)), best first.
    """
    k = min(k, len(keys))
    q = normalize_rows(queries.float())
    best_s = torch.full((len(q), 0), -2.0)
    best_i = torch.zeros((len(q), 0), dtype=torch.long)
    for start in range(0, len(keys), chunk):
        sims = q @ normalize_rows(keys[start:start + chunk].float()).T        # (nq, chunk)
        s, i = torch.topk(sims, min(k, sims.shape[1]), dim=1, sorted=True)
        # merge this chunk's candidates with the running best; stable sort keeps earlier keys first
        cand_s, cand_i = torch.cat([best_s, s], 1), torch.cat([best_i, i + start], 1)
        order = torch.sort(cand_s, dim=1, descending=True, stable=True).indices[:, :k]
        best_s, best_i = cand_s.gather(1, order), cand_i.gather(1, order)
    return best_s, best_i


def word_forms(word: str) -> list[str]:
    """The lower-cased word, then its singular or plural guesses (English suffix rules)."""
    w = word.lower()
    forms = [w]
    if w.endswith("ies") and len(w) > 4:
        forms.append(w[:-3] + "y")
    elif w.endswith(("ses", "xes", "ches", "shes")):
        forms.append(w[:-2])
    elif w.endswith("s") and not w.endswith("ss"):
        forms.append(w[:-1])
    if not w.endswith("s") or w.endswith("ss"):
        forms.append(w[:-1] + "ies" if w.endswith("y") and w[-2:-1] not in "aeiou" else
                     w + "es" if w.endswith(("s", "x", "ch", "sh")) else w + "s")
    return list(dict.fromkeys(forms))


def lookup_word(word: str, stoi: dict[str, int]) -> str | None:
    """The first form of ``word`` present in the vocabulary, or None."""
    return next((f for f in word_forms(word) if f in stoi), None)


@dataclass(frozen=True)
class ClassMatch:
    """How one class name was matched: the phrase used and its vocabulary tokens (empty: unmatched)."""
    name: str
    phrase: str | None
    tokens: tuple[str, ...]
    tried: tuple[str, ...]

    @property
    def matched(self) -> bool:
        return bool(self.tokens)


def match_class(name: str, candidates: list[str], stoi: dict[str, int]) -> ClassMatch:
    """Match class ``name`` via its candidate phrases in order (default: the name itself).

    Underscores and hyphens split words ("golden_retriever" -> "golden retriever"); a phrase
    matches only when every word does.
    """
    tried = tuple(candidates) or (name,)
    for phrase in tried:
        words = phrase.replace("_", " ").replace("-", " ").split()
        tokens = [lookup_word(w, stoi) for w in words]
        if words and all(tokens):
            return ClassMatch(name, phrase, tuple(tokens), tried)
    return ClassMatch(name, None, (), tried)


def explain_miss(m: ClassMatch, stoi: dict[str, int]) -> str:
    """Why ``m`` is unmatched: each candidate phrase with the word forms missing from the vocabulary.

    >>> explain_miss(match_class("wild", ["wild animal"], {"wild": 0}), {"wild": 0})
    "'wild animal' (no animal/animals)"
    """
    parts = []
    for phrase in m.tried:
        words = phrase.replace("_", " ").replace("-", " ").split()
        missing = ["/".join(word_forms(w)) for w in words if lookup_word(w, stoi) is None] or ["words"]
        parts.append(f"'{phrase}' (no {', no '.join(missing)})")
    return ", ".join(parts)


def class_vectors(matches: list[ClassMatch], emb: np.ndarray, stoi: dict[str, int]) -> np.ndarray:
    """(n_classes, emb_sz) float32: the mean of each matched class's token vectors."""
    unmatched = [m.name for m in matches if not m.matched]
    if unmatched:
        raise ValueError(f"class_vectors: no vector for class(es) {unmatched}: add synonyms in the class-word map")
    return np.stack([emb[[stoi[t] for t in m.tokens]].mean(0) for m in matches]).astype(np.float32)
