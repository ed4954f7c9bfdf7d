"""The super-resolution task's params: one dataclass per stage or block (``superres.<key>`` in params.yaml)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IndexParams:
    """index_photos: the training photos (never the benchmark sets) -> photos.csv with a held-out split."""
    n_valid: int = field(metadata=dict(ge=1))           # photos held out for the per-epoch validation PSNR
    min_side: int = field(metadata=dict(ge=8))          # smaller photos are left out (counted): a patch must fit
    max_images: int | None = field(metadata=dict(ge=2)) # a seeded subset (tiny scale); null = all
    seed: int


@dataclass(frozen=True)
class ModelParams:
    """EDSR (dlpipe.models.edsr); the scale comes from the variant."""
    nf: int = field(metadata=dict(ge=1))
    n_blocks: int = field(metadata=dict(ge=0))
    res_scale: float = field(metadata=dict(gt=0.0))
    bicubic_skip: bool                                   # learn the residual over bicubic upsampling


@dataclass(frozen=True)
class ScaleParams:
    """train_superres@<variant> (x2, x4): the upscaling factor and its high-resolution patch side."""
    scale: int = field(metadata=dict(ge=2))
    patch: int = field(metadata=dict(ge=8))              # HR patch side at full size (a multiple of scale)


@dataclass(frozen=True)
class DataParams:
    bs: int = field(metadata=dict(ge=1))
    repeat: int = field(metadata=dict(ge=1))             # random patches per training photo per epoch
    valid_patch: int = field(metadata=dict(ge=8))        # the held-out photos' centre crop (HR px; multiple of 4)


@dataclass(frozen=True)
class TrainParams:
    """train_superres: pixel L1, one-cycle Adam; progressive resizing (``small`` x patch first)."""
    small_epochs: int = field(metadata=dict(ge=0))
    full_epochs: int = field(metadata=dict(ge=0))
    small: float = field(metadata=dict(gt=0.0, le=1.0))  # the first phase's patch side as a share of ``patch``
    lr: float = field(metadata=dict(gt=0.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    moms: list[float] = field(metadata=dict(gt=0.0, lt=1.0, each=True))   # one-cycle's beta1 range (start/mid)
    beta2: float = field(metadata=dict(gt=0.0, lt=1.0))
    eps: float = field(metadata=dict(gt=0.0))
    wd: float = field(metadata=dict(ge=0.0))


@dataclass(frozen=True)
class LossNetworkParams:
    """The perceptual loss's frozen network (dlpipe.vision.loss_network)."""
    source: str                                          # backbone | random_vgg:<arch> | torchvision:<arch>
    layers: list[str] = field(metadata=dict(nonempty=True))
    layer_weights: list[float] = field(metadata=dict(ge=0.0, each=True))
    seed: int                                            # random_vgg's weights


@dataclass(frozen=True)
class FinetuneParams:
    """finetune_superres: the L1 model trained on with the perceptual loss (fastai's FeatureLoss)."""
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    moms: list[float] = field(metadata=dict(gt=0.0, lt=1.0, each=True))
    beta2: float = field(metadata=dict(gt=0.0, lt=1.0))
    eps: float = field(metadata=dict(gt=0.0))
    pixel_weight: float = field(metadata=dict(ge=0.0))
    gram_weight: float = field(metadata=dict(ge=0.0))


@dataclass(frozen=True)
class EvalParams:
    """evaluate_superres: Y-channel PSNR/SSIM (border = scale) on the benchmark sets, beside bicubic."""
    sets: list[str] = field(metadata=dict(nonempty=True))   # folders of sr_benchmarks (Set5, Set14)
    crop_images: list[str] = field(metadata=dict(nonempty=True))   # "Set/name" drawn as crops in crops_x<s>.png
    crop: int = field(metadata=dict(ge=8))                   # crop side (HR px) around each image's centre
