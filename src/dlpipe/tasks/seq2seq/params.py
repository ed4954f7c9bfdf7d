"""The translation task's params: one dataclass per stage (``seq2seq.<stage>`` in params.yaml)."""
from __future__ import annotations

from dataclasses import dataclass, field

LANGS = ("fr", "en")


@dataclass(frozen=True)
class PrepareParams:
    """prepare_pairs: which files are which split, the token cap, an optional seeded subsample."""
    splits: dict[str, str]                                       # split -> file stem (<stem>.<lang>.gz), train/valid/test
    holdout: float = field(metadata=dict(gt=0.0, lt=0.5))        # giga-fren questions: seeded share for each of valid, test
    max_tokens: int = field(metadata=dict(ge=1))                 # drop training pairs with a side longer (spaCy tokens)
    max_train: int | None = field(metadata=dict(ge=1))           # seeded subsample of the kept training pairs (null = all)
    max_eval: int | None = field(metadata=dict(ge=1))            # first N pairs of valid/test (tiny scale; null = all)
    seed: int


@dataclass(frozen=True)
class ModelParams:
    """The ladder's rungs are flags here (bidir, attention); read by train_seq2seq, stored in the model file."""
    emb_sz: int = field(metadata=dict(ge=1))
    n_hid: int = field(metadata=dict(ge=1))                      # per encoder direction
    n_layers: int = field(metadata=dict(ge=1))
    bidir: bool
    attention: bool
    dropout: float = field(metadata=dict(ge=0.0, lt=1.0))


@dataclass(frozen=True)
class TrainParams:
    """train_seq2seq: Adam with one-cycle, teacher forcing decaying linearly per epoch."""
    bs: int = field(metadata=dict(ge=1))
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    div: float = field(metadata=dict(gt=0.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    wd: float = field(metadata=dict(ge=0.0))
    clip: float | None = field(metadata=dict(gt=0.0))
    label_smoothing: float = field(metadata=dict(ge=0.0, lt=1.0))
    teacher_forcing: list[float] = field(metadata=dict(ge=0.0, le=1.0, each=True, nonempty=True))  # [first, last] epoch
    emb_init: str | None                                         # target-embedding vectors dir (itos.json + embeddings.npy) or null


@dataclass(frozen=True)
class EvaluateParams:
    """evaluate_seq2seq: decoding of the official test set."""
    bs: int = field(metadata=dict(ge=1))
    beam: int = field(metadata=dict(ge=1))                       # 1 = greedy only
    alpha: float = field(metadata=dict(ge=0.0))                  # length normalisation of beam scores
    max_len_ratio: float = field(metadata=dict(gt=0.0))          # hypotheses stop after ratio * source tokens + 10
    n_samples: int = field(metadata=dict(ge=0))                  # translations shown in samples.md
    n_heatmaps: int = field(metadata=dict(ge=0))                 # attention pictures (attention models only)
