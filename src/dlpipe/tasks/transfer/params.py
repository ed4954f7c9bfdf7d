"""The transfer task's params: one dataclass per stage (``vision.<stage>`` in params.yaml)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dlpipe.vision.image_data import AugParams

Labels = Literal["full", "low"]   # every train label, or the index stage's labeled.npy subset


@dataclass(frozen=True)
class PretrainParams:
    """pretrain_backbone: one-cycle on the MNIST digits."""
    epochs: int = field(metadata=dict(ge=1))
    bs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    wd: float = field(metadata=dict(ge=0.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    div: float = field(metadata=dict(gt=0.0))
    pad: int = field(metadata=dict(ge=0))                            # random-crop padding, px


@dataclass(frozen=True)
class CutParams:
    """Where the backbone is cut and what it reads: shared by precompute and the from-scratch model."""
    layer: str                   # cut after this named layer (Darknet: stem, group<i>, pool)
    size: int = field(metadata=dict(ge=8))                           # shortest side resized, centre-cropped


@dataclass(frozen=True)
class PrecomputeParams:
    """precompute@<dataset>: its inputs, the cut, the forward batches and the feature store's format."""
    src: str                     # the raw images (dvc.yaml passes it as SRC)
    backbone: str                # the backbone file (dvc.yaml passes it as MODEL): cifar's export, MNIST's, torchvision's
    cut: CutParams
    bs: int = field(metadata=dict(ge=1))
    dtype: Literal["float32", "float16"]
    backend: Literal["bcolz", "memmap"]
    chunk_rows: int = field(metadata=dict(ge=1))
    cname: Literal["lz4", "blosclz", "lz4hc", "zlib", "zstd"]
    clevel: int = field(metadata=dict(ge=0, le=9))
    seed: int                    # row-order permutation
    n_workers: int = field(metadata=dict(ge=0))   # image-decoding processes (0: the stage's own)


@dataclass(frozen=True)
class TrainHeadParams:
    """train_head@<labels>: a head on stored features."""
    bs: int = field(metadata=dict(ge=1))
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    wd: float = field(metadata=dict(ge=0.0))
    buffer_chunks: int = field(metadata=dict(ge=1))     # store chunks shuffled together


@dataclass(frozen=True)
class FinetuneParams:
    """finetune_vision@ and scratch_vision@<labels>: images through the whole network."""
    bs: int = field(metadata=dict(ge=1))
    epochs_head: int = field(metadata=dict(ge=0))       # phase "head": freeze_to(-1)
    epochs_all: int = field(metadata=dict(ge=1))        # phase "all": unfreeze(), slice(lr / lr_div, lr)
    lr: float = field(metadata=dict(gt=0.0))
    lr_div: float = field(metadata=dict(ge=1.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    wd: float = field(metadata=dict(ge=0.0))
    aug: AugParams


@dataclass(frozen=True)
class EvaluateParams:
    """evaluate_vision@<model>-<labels>."""
    bs: int = field(metadata=dict(ge=1))
    n_show: int = field(metadata=dict(ge=1))          # images in the prediction grid
    seed: int                                         # which images the grid shows
