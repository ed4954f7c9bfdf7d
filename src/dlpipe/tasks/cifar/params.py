"""The CIFAR-10 task's params: one dataclass per stage (``cifar.<stage>`` in params.yaml)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DecodeParams:
    """decode_cifar: the JPEG archive -> uint8 arrays."""
    seed: int                                                  # which images the cap keeps
    max_per_class: int | None = field(metadata=dict(ge=1))     # cap per class and split (tiny scale); null = all


@dataclass(frozen=True)
class ModelParams:
    """The Darknet (lesson 12): read by lr_find_cifar, train_cifar (export_backbone reads the checkpoint)."""
    nf: int = field(metadata=dict(ge=1))                       # stem width; group i has nf * 2**(i+1) channels
    layers: list[int] = field(metadata=dict(ge=0, each=True, nonempty=True))   # residual blocks per group


@dataclass(frozen=True)
class DataParams:
    """Batches and augmentation, shared by lr_find_cifar and train_cifar (the sweep sees what training sees)."""
    bs: int = field(metadata=dict(ge=2))
    pad: int = field(metadata=dict(ge=0))                      # pad-and-random-crop, px (reflect-free: mean fill)
    flip: bool                                                 # random horizontal flip
    channels_last: bool                                        # NHWC tensors: faster convolutions on CPU (oneDNN) and GPU
    label_smoothing: float = field(metadata=dict(ge=0.0, lt=1.0))


@dataclass(frozen=True)
class TrainParams:
    """train_cifar: one-cycle SGD (Nesterov) with decoupled weight decay."""
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))                   # peak lr of the cycle
    div: float = field(metadata=dict(gt=0.0))                  # start lr = lr / div
    div_final: float = field(metadata=dict(gt=0.0))            # end lr = lr / div_final
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    moms: list[float] = field(metadata=dict(gt=0.0, lt=1.0, each=True))   # cyclic momentum [max, min]
    nesterov: bool
    wd: float = field(metadata=dict(ge=0.0))
    tta: bool                                                  # test-time flip: average the two softmaxes
    time_to: list[float] = field(metadata=dict(gt=0.0, le=1.0, each=True))   # accuracies timed (time_to_accuracy)


@dataclass(frozen=True)
class LRFindParams:
    """lr_find_cifar: the exponential sweep (its plot is a stage output)."""
    start: float = field(metadata=dict(gt=0.0))
    end: float = field(metadata=dict(gt=0.0))
    n: int = field(metadata=dict(ge=5))
