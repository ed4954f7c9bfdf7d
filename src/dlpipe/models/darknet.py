"""Darknet (2018 lesson 12, the DAWNBench CIFAR-10 net): conv-BN-LeakyReLU stem, residual groups that
double the channels with stride 2, adaptive average pooling (any input size), a linear head.

::

    x (bs, in_ch, H, W)
    stem    conv3x3 in_ch->nf                      (bs, nf, H, W)
    group0  conv3x3/2 nf->2nf + layers[0] x res    (bs, 2nf, H/2, W/2)
    group1  conv3x3/2 2nf->4nf + layers[1] x res   (bs, 4nf, H/4, W/4)
    ...
    pool    adaptive avg pool + flatten            (bs, nf * 2**len(layers))
    head    linear                                 (bs, n_classes)

Every top-level child has a name, so :func:`cut` can return the network up to ``group1`` or ``pool``
for feature precomputation.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class DarknetConfig:
    in_ch: int = field(metadata=dict(ge=1))
    nf: int = field(metadata=dict(ge=1))            # stem width; group i has nf * 2**(i+1) channels
    layers: tuple[int, ...] = field(metadata=dict(ge=0, each=True, nonempty=True))   # res blocks per group
    n_classes: int = field(metadata=dict(ge=1))


def conv_bn_lrelu(ni: int, nf: int, ks: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv (no bias: BN follows) -> BN -> LeakyReLU(0.1)."""
    return nn.Sequential(nn.Conv2d(ni, nf, ks, stride=stride, padding=ks // 2, bias=False),
                         nn.BatchNorm2d(nf), nn.LeakyReLU(0.1, inplace=True))


class ResLayer(nn.Module):
    """x + conv3x3(ni/2 -> ni)(conv1x1(ni -> ni/2)(x))."""

    def __init__(self, ni: int):
        super().__init__()
        self.conv1 = conv_bn_lrelu(ni, ni // 2, ks=1)
        self.conv2 = conv_bn_lrelu(ni // 2, ni, ks=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # out-of-place add: the in-place add_ of the lesson would break autograd on a frozen,
        # hooked or checkpointed input
        return x + self.conv2(self.conv1(x))


def group(ni: int, n_blocks: int) -> nn.Sequential:
    """A stride-2 conv doubling the channels, then ``n_blocks`` residual layers."""
    return nn.Sequential(conv_bn_lrelu(ni, ni * 2, stride=2), *[ResLayer(ni * 2) for _ in range(n_blocks)])


class Darknet(nn.Sequential):
    """Named children: stem, group0..group{n-1}, pool, head."""

    def __init__(self, cfg: DarknetConfig):
        layers = [("stem", conv_bn_lrelu(cfg.in_ch, cfg.nf))]
        nf = cfg.nf
        for i, n_blocks in enumerate(cfg.layers):
            layers.append((f"group{i}", group(nf, n_blocks)))
            nf *= 2
        layers.append(("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())))   # (bs, nf)
        layers.append(("head", nn.Linear(nf, cfg.n_classes)))
        super().__init__(OrderedDict(layers))
        self.cfg = cfg
        self.n_features = nf

    def splitter(self, model: nn.Module | None = None) -> list[list[nn.Parameter]]:
        """Three layer groups: [stem + early groups], [later groups], [head]."""
        return darknet_splitter(self if model is None else model)


def darknet_splitter(model: Darknet) -> list[list[nn.Parameter]]:
    """[stem + first n//2 groups], [remaining groups], [head] (input side first)."""
    names = [n for n, _ in model.named_children() if n.startswith("group")]
    early, late = ["stem", *names[: len(names) // 2]], names[len(names) // 2:]
    return [[p for n in early for p in getattr(model, n).parameters()],
            [p for n in late for p in getattr(model, n).parameters()],
            list(model.head.parameters())]


def layer_names(model: nn.Module) -> list[str]:
    """Names at which :func:`cut` can cut."""
    return [n for n, _ in model.named_children()]


def cut(model: nn.Sequential, layer: str) -> nn.Sequential:
    """The children of ``model`` up to and including ``layer`` (sharing parameters)."""
    names = layer_names(model)
    if layer not in names:
        raise ValueError(f"cut: no layer '{layer}' in {type(model).__name__} (expected one of: {', '.join(names)})")
    keep = names[: names.index(layer) + 1]
    return nn.Sequential(OrderedDict((n, getattr(model, n)) for n in keep))


def darknet(cfg: DarknetConfig) -> Darknet:
    """Factory (weights from kaiming-normal for the LeakyReLU convs)."""
    model = Darknet(cfg)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
    return model


def load_darknet(checkpoint) -> tuple[nn.Module, dict]:
    """The Darknet saved by :func:`dlpipe.io.checkpoint.save_model` (weights loaded), and the file's blob."""
    from dlpipe.io.checkpoint import load_model   # here, not at the top: the model stays importable without io

    blob = load_model(checkpoint)
    model = darknet(DarknetConfig(**{**blob["config"], "layers": tuple(blob["config"]["layers"])}))
    load_model(checkpoint, model)
    return model, blob
