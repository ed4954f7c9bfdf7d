"""Johnson et al.'s (2016) feed-forward style transformer, as in the 2018 lesson 14 and pytorch/examples'
fast_neural_style: reflection padding (no black borders to stylise), instance norm (per-image contrast
normalisation — Ulyanov et al. 2016 showed it, not batch norm, is what makes feed-forward stylisation
work), residual blocks at 1/4 resolution, nearest upsampling + conv instead of transposed convs (no
checkerboard, Odena et al. 2016)::

    x (bs, 3, H, W) 0-1
    conv 9x9 3 -> nf, IN, ReLU                               (bs, nf, H, W)
    conv 3x3 / 2 nf -> 2nf, IN, ReLU; 2nf -> 4nf             (bs, 4nf, H/4, W/4)
    n_res x [conv-IN-ReLU-conv-IN] + x                       (bs, 4nf, H/4, W/4)
    2 x [nearest x2, conv 3x3, IN, ReLU]: 4nf -> 2nf -> nf   (bs, nf, H, W)
    conv 9x9 nf -> 3, sigmoid                                (bs, 3, H, W) 0-1

H and W need not be multiples of 4: the output is resized back to the input's size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TransformerConfig:
    nf: int = field(metadata=dict(ge=1))          # 32 in the paper
    n_res: int = field(metadata=dict(ge=0))       # 5 in the paper


def conv_in(ni: int, nf: int, ks: int, stride: int = 1, act: bool = True) -> nn.Sequential:
    """Reflection pad, conv, instance norm (affine), ReLU."""
    layers = [nn.ReflectionPad2d(ks // 2), nn.Conv2d(ni, nf, ks, stride), nn.InstanceNorm2d(nf, affine=True)]
    return nn.Sequential(*layers, *([nn.ReLU(inplace=True)] if act else []))


class ResidualBlock(nn.Module):
    def __init__(self, nf: int):
        super().__init__()
        self.body = nn.Sequential(conv_in(nf, nf, 3), conv_in(nf, nf, 3, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpConv(nn.Module):
    """Nearest-neighbour x2, then conv-IN-ReLU."""

    def __init__(self, ni: int, nf: int):
        super().__init__()
        self.conv = conv_in(ni, nf, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TransformerNet(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg, nf = cfg, cfg.nf
        self.down = nn.Sequential(conv_in(3, nf, 9), conv_in(nf, 2 * nf, 3, 2), conv_in(2 * nf, 4 * nf, 3, 2))
        self.res = nn.Sequential(*[ResidualBlock(4 * nf) for _ in range(cfg.n_res)])
        self.up = nn.Sequential(UpConv(4 * nf, 2 * nf), UpConv(2 * nf, nf))
        self.out = nn.Sequential(nn.ReflectionPad2d(4), nn.Conv2d(nf, 3, 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.out(self.up(self.res(self.down(x))))                    # (bs, 3, ~H, ~W)
        if y.shape[-2:] != x.shape[-2:]:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(y)


def transformer_net(cfg: TransformerConfig) -> TransformerNet:
    return TransformerNet(cfg)


def load_transformer(path) -> tuple[TransformerNet, dict]:
    """The network saved by train_fast_style, and its file's dict."""
    from dlpipe.io.checkpoint import load_model

    blob = load_model(path)
    net = transformer_net(TransformerConfig(**blob["config"]))
    load_model(path, net)
    return net.eval(), blob
