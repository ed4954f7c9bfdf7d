"""The style task's params (``style.<key>`` in params.yaml): the loss networks, then one dataclass per stage."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dlpipe.core.errors import ParamsError


@dataclass(frozen=True)
class PairsParams:
    """style.pairs: dvc.yaml's gatys matrix is content x style (file stems in content/ and style/)."""
    content: list[str] = field(metadata=dict(nonempty=True))
    style: list[str] = field(metadata=dict(nonempty=True))


@dataclass(frozen=True)
class NetworkParams:
    """One loss network (dlpipe.vision.loss_network) and what its layers weigh (dlpipe.vision.style)."""
    source: str                                          # backbone | random_vgg:<arch> | torchvision:<arch>
    layers: list[str] = field(metadata=dict(nonempty=True))
    content: list[float] = field(metadata=dict(ge=0.0, each=True))   # per layer; 0 = not a content layer
    style: list[float] = field(metadata=dict(ge=0.0, each=True))     # per layer; 0 = not a style layer
    seed: int                                            # random_vgg's weights


@dataclass(frozen=True)
class NetworksParams:
    """style.networks: the two loss networks compared side by side, and the judge that grades both."""
    backbone: NetworkParams       # ours (source: backbone = the CIFAR Darknet), or a torchvision file a user has
    random_vgg: NetworkParams     # random filters (He et al. 2016; Ustyuzhaninov et al. 2016)
    judge: NetworkParams          # separately seeded; grades every result, never optimised

    def get(self, name: str, key: str) -> NetworkParams:
        """The network called ``name`` (``key`` is the params key that named it, for the error)."""
        if name not in ("backbone", "random_vgg", "judge"):
            raise ParamsError(f"{key}: {name!r}: expected backbone, random_vgg or judge (style.networks)")
        return getattr(self, name)


@dataclass(frozen=True)
class GatysParams:
    """gatys@<content>-<style>: pixels optimised with L-BFGS, once per network in ``networks``."""
    networks: list[str] = field(metadata=dict(nonempty=True))   # of style.networks (backbone, random_vgg), side by side
    size: int = field(metadata=dict(ge=16))              # square crop side (px) of content and style
    init: Literal["content", "noise"]
    n_evals: dict[str, int]                              # L-BFGS loss evaluations, per network
    history_size: int = field(metadata=dict(ge=1))
    content_weight: float = field(metadata=dict(ge=0.0))
    style_weight: float = field(metadata=dict(ge=0.0))
    tv_weight: dict[str, float]                          # total variation (neural-style's -tv_weight), per network
    seed: int                                            # the noise init


@dataclass(frozen=True)
class DreamParams:
    """deep_dream: gradient ascent on a network's activations, octave by octave, with jitter."""
    network: str                                         # a name in style.networks
    layers: list[str] = field(metadata=dict(nonempty=True))   # whose mean activation is maximised
    images: list[str] = field(metadata=dict(nonempty=True))   # content photos (file stems)
    size: int = field(metadata=dict(ge=16))              # the long side of the full-size octave
    octaves: int = field(metadata=dict(ge=1))
    octave_scale: float = field(metadata=dict(gt=1.0))
    steps: int = field(metadata=dict(ge=1))              # per octave
    step_size: float = field(metadata=dict(gt=0.0))      # in units of the image's 0-1 range per normalised step
    jitter: int = field(metadata=dict(ge=0))             # max random shift (px) per step
    seed: int


@dataclass(frozen=True)
class FastStyleParams:
    """train_fast_style: Johnson et al.'s transformer for one style, trained on the photo pool."""
    style: str                                           # a style image (file stem)
    network: str                                         # a name in style.networks
    nf: int = field(metadata=dict(ge=1))
    n_res: int = field(metadata=dict(ge=0))
    size: int = field(metadata=dict(ge=16))              # training crop side (px)
    bs: int = field(metadata=dict(ge=1))
    repeat: int = field(metadata=dict(ge=1))             # random crops per photo per epoch
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    content_weight: float = field(metadata=dict(ge=0.0))
    style_weight: float = field(metadata=dict(ge=0.0))
    eval_size: int = field(metadata=dict(ge=16))         # content photos stylised (and timed) at this square size
