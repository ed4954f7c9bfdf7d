"""The DeViSE task's params: one dataclass per stage (``vision.devise.{vocab,train,search}``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dlpipe.vision.heads import HeadParams


@dataclass(frozen=True)
class VocabParams:
    """devise_vocab: which words stand for each class."""
    class_words: dict[str, list[str]]     # class -> candidate phrases tried in order (synonyms); default: its name


@dataclass(frozen=True)
class TrainParams:
    """devise_train: the head regressing word vectors from image features (cosine loss, one-cycle)."""
    head: HeadParams                      # the head's architecture (n_out = word-vector size)
    bs: int = field(metadata=dict(ge=2))             # the head's BatchNorm needs two rows per batch
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    wd: float = field(metadata=dict(ge=0.0))


@dataclass(frozen=True)
class SearchParams:
    """devise_search: nearest neighbours over the whole vocabulary, and text -> image queries."""
    search_vocab: Literal["alpha", "all"]  # alpha: only alphabetic tokens are search results
    exclude: list[str]                    # tokens never returned (fastai special tokens)
    topk: int = field(metadata=dict(ge=1))            # nearest words per image
    queries: list[str]                                # extra text -> image queries besides the class words
    n_images: int = field(metadata=dict(ge=1))        # nearest images per query
    chunk: int = field(metadata=dict(ge=1))           # vocabulary rows per matrix product
