"""The ULMFiT task's params: one dataclass per stage (``imdb.<stage>`` in params.yaml)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["fwd", "bwd"]
DIRECTIONS = ("fwd", "bwd")
Schedule = Literal["stlr", "one_cycle", "cos", "const"]


@dataclass(frozen=True)
class PrepareParams:
    """prepare_imdb: aclImdb -> classifier, curve, evaluation and LM CSV sets (no test text is trained on)."""
    split_seed: int
    n_train: int | None = field(metadata=dict(ge=2))       # classifier's labelled reviews, class-balanced (null = all)
    n_valid: int = field(metadata=dict(ge=2))              # aclImdb train reviews held out: training-time validation
    n_test: int | None = field(metadata=dict(ge=2))        # class-balanced subset of the official test split (null = all)
    curve: list[int] = field(metadata=dict(ge=2, each=True))   # label budgets of the label-efficiency curve
    lm_max_words: int | None = field(metadata=dict(ge=1))  # LM set capped (seeded, whole reviews); null = all
    lm_valid_pct: float = field(metadata=dict(gt=0.0, lt=1.0))
    include_unsup: bool                                    # the 50k unlabelled train reviews join the LM set
    max_docs: int | None = field(metadata=dict(ge=1))      # cap per split and label (tiny scale)


@dataclass(frozen=True)
class LMCorpusParams:
    """prepare_lm_corpus: the pretraining corpus (no IMDb text). Label = source: 0 WikiText, 1 books."""
    split_seed: int
    wikitext_train: list[str] = field(metadata=dict(nonempty=True))  # file names in the WikiText dir
    heldout_from: str                                                 # file whose articles give valid
    n_heldout_articles: int | None = field(metadata=dict(ge=1))      # null = all its articles
    gutenberg: bool                                                   # + Project Gutenberg books
    heldout_authors: list[str]            # whose books are validation only (editions repeat across EBook numbers)
    book_doc_words: int = field(metadata=dict(ge=10))                # a book cut into documents of ~this many words
    max_words: int | None = field(metadata=dict(ge=1))               # training set capped (seeded, whole docs)
    valid_max_words: int | None = field(metadata=dict(ge=1))         # held-out books capped the same way
    max_docs: int | None = field(metadata=dict(ge=1))                # cap per source (tiny scale)


@dataclass(frozen=True)
class ModelParams:
    """AWD-LSTM size, shared by every LM and classifier of the task (weights must fit)."""
    emb_sz: int = field(metadata=dict(ge=1))
    n_hid: int = field(metadata=dict(ge=1))
    n_layers: int = field(metadata=dict(ge=1))


@dataclass(frozen=True)
class LMTrainParams:
    """What both LM stages share: batches, the schedule over all groups, regularisation."""
    bs: int = field(metadata=dict(ge=1))
    bptt: int = field(metadata=dict(ge=2))
    drop_mult: float = field(metadata=dict(ge=0.0))
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    schedule: Schedule
    discriminative: bool                          # lr/2.6^k per group from the last
    wd: float = field(metadata=dict(ge=0.0))
    clip: float | None = field(metadata=dict(gt=0.0))
    alpha: float = field(metadata=dict(ge=0.0))   # AR
    beta: float = field(metadata=dict(ge=0.0))    # TAR
    max_tokens: int | None = field(metadata=dict(ge=1))  # per epoch: a seeded subset of whole documents
    sampled_k: int | None = field(metadata=dict(ge=1))   # training softmax over K sampled words; null = exact
    checkpoint_every: int = field(metadata=dict(ge=0))


@dataclass(frozen=True)
class PretrainParams(LMTrainParams):
    """pretrain_lm: an LM from scratch on general English."""
    max_vocab: int | None = field(metadata=dict(ge=10))  # most frequent words kept: a cheaper softmax


@dataclass(frozen=True)
class FinetuneLMParams(LMTrainParams):
    """finetune_lm: ``last_epochs`` of the embedding/decoder group after the vocabulary remap, then all."""
    last_epochs: int = field(metadata=dict(ge=0))
    lr_last: float = field(metadata=dict(gt=0.0))
    pretrained: bool                              # false: ULMFiT's "no pretraining" ablation (random init)


@dataclass(frozen=True)
class LMEvalParams:
    """evaluate_lm: perplexity batches (bptt windows, no randomness)."""
    bs: int = field(metadata=dict(ge=1))
    bptt: int = field(metadata=dict(ge=2))


@dataclass(frozen=True)
class ClassifierParams:
    """train_classifier: concat-pooling head, gradual unfreezing, STLR, discriminative lrs."""
    bs: int = field(metadata=dict(ge=1))
    bptt: int = field(metadata=dict(ge=2))
    max_len: int = field(metadata=dict(ge=1))       # tokens at the end of a review that get gradients
    drop_mult: float = field(metadata=dict(ge=0.0))
    lin_ftrs: list[int] = field(metadata=dict(ge=1, each=True))   # hidden sizes of the head
    lrs: list[float] = field(metadata=dict(gt=0.0, each=True))    # per unfreezing phase (last group's lr)
    epochs: list[int] = field(metadata=dict(ge=0, each=True))     # per unfreezing phase
    factor: float = field(metadata=dict(gt=0.0))   # discriminative lr ratio between groups (2.6)
    schedule: Schedule
    wd: float = field(metadata=dict(ge=0.0))
    clip: float | None = field(metadata=dict(gt=0.0))
    pretrained: bool                               # false: random encoder ("from scratch")
    finetune: bool                                 # false: the pretrained LM's encoder, no IMDb LM fine-tuning
    gradual_unfreezing: bool                       # false: one phase over all groups
    discriminative: bool                           # false: one lr for every group


@dataclass(frozen=True)
class CurveParams:
    """curve@<n>-<init>: how the label-efficiency classifiers train (the rest is imdb.train_classifier's)."""
    bs: int = field(metadata=dict(ge=2))
    epochs: list[int] = field(metadata=dict(ge=0, each=True))   # per unfreezing phase


@dataclass(frozen=True)
class EvalParams:
    """evaluate_classifier: the evaluation sets, batch size, and the TF-IDF + logistic regression baseline."""
    sets: list[str] = field(metadata=dict(nonempty=True))   # clas/ sets; the first is the headline (test)
    bs: int = field(metadata=dict(ge=1))
    tfidf_ngrams: int = field(metadata=dict(ge=1))
    tfidf_min_df: int = field(metadata=dict(ge=1))
    tfidf_C: float = field(metadata=dict(gt=0.0))


@dataclass(frozen=True)
class GenerateParams:
    """generate: samples from the fine-tuned forward LM."""
    prompts: list[str] = field(metadata=dict(nonempty=True))
    n_words: int = field(metadata=dict(ge=1))
    temperature: float = field(metadata=dict(ge=0.0))
    top_k: int = field(metadata=dict(ge=0))
    n_samples: int = field(metadata=dict(ge=1))
    seed: int
