"""EDSR-style super-resolution network (Lim et al. 2017; 2018 lesson 14's "enhance"): residual blocks
without BatchNorm, residual scaling, pixel-shuffle upsampling with ICNR init, and a bicubic shortcut.

BN is left out because it normalises away the range information a pixel-exact output needs (EDSR's
finding), and residual scaling (x + 0.1 f(x)) keeps a deep stack stable without it. The network learns
only the *residual* over bicubic upsampling (VDSR's trick), with the last conv zero-initialised, so at
step 0 the model *is* bicubic and every step improves on it — which is what lets a few CPU minutes reach
the papers' range::

    x (bs, 3, h, w) 0-1
    head   conv3x3 3 -> nf (on x - mean)              (bs, nf, h, w)
    body   n_blocks x [conv-ReLU-conv, x res_scale] + conv, plus the head's output (long skip)
    up     log2(scale) x [conv3x3 nf -> 4 nf (ICNR), PixelShuffle(2)]    (bs, nf, scale h, scale w)
    tail   conv3x3 nf -> 3 (zero init)                (bs, 3, H, W)
    out    bicubic(x, scale) + tail                   (bs, 3, H, W), H = scale h
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.models.upsample import icnr_

RGB_MEAN = (0.45, 0.44, 0.40)      # roughly natural photos' channel means (DIV2K's are 0.448, 0.437, 0.404)


@dataclass(frozen=True)
class EdsrConfig:
    scale: int = field(metadata=dict(ge=2))            # 2, 4 or 8 (x2 pixel-shuffle steps)
    nf: int = field(metadata=dict(ge=1))               # feature channels (EDSR-baseline 64, EDSR 256)
    n_blocks: int = field(metadata=dict(ge=0))         # residual blocks (EDSR-baseline 16, EDSR 32)
    res_scale: float = field(metadata=dict(gt=0.0))    # EDSR 0.1 for its wide model, 1.0 for the baseline
    bicubic_skip: bool = True                          # learn the residual over bicubic upsampling


class ResBlock(nn.Module):
    """x + res_scale * conv(ReLU(conv(x))), no BN."""

    def __init__(self, nf: int, res_scale: float):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(nf, nf, 3, padding=1), nn.Conv2d(nf, nf, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x), inplace=True))


def upsampler(nf: int, scale: int) -> nn.Sequential:
    """log2(scale) steps of conv3x3 nf -> 4 nf (ICNR) + PixelShuffle(2): (bs, nf, h, w) -> (bs, nf, scale h, scale w)."""
    steps = math.log2(scale)
    if steps != int(steps):
        raise ValueError(f"edsr: scale {scale}: expected a power of 2")
    layers = []
    for _ in range(int(steps)):
        conv = nn.Conv2d(nf, 4 * nf, 3, padding=1)
        icnr_(conv.weight, 2)
        nn.init.zeros_(conv.bias)
        layers += [conv, nn.PixelShuffle(2)]
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    def __init__(self, cfg: EdsrConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1))
        self.head = nn.Conv2d(3, cfg.nf, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(cfg.nf, cfg.res_scale) for _ in range(cfg.n_blocks)],
                                  nn.Conv2d(cfg.nf, cfg.nf, 3, padding=1))
        self.up = upsampler(cfg.nf, cfg.scale)
        self.tail = nn.Conv2d(cfg.nf, 3, 3, padding=1)
        if cfg.bicubic_skip:               # start exactly at bicubic (see the module docstring)
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x - self.mean)                                  # (bs, nf, h, w)
        out = self.tail(self.up(h + self.body(h)))                    # (bs, 3, scale h, scale w)
        if self.cfg.bicubic_skip:
            out = out + F.interpolate(x, scale_factor=self.cfg.scale, mode="bicubic", align_corners=False)
        return out + (0.0 if self.cfg.bicubic_skip else self.mean)


def edsr(cfg: EdsrConfig) -> EDSR:
    return EDSR(cfg)


def load_edsr(path) -> tuple[EDSR, dict]:
    """The network saved by train_superres / finetune_superres, and its file's dict."""
    from dlpipe.io.checkpoint import load_model

    blob = load_model(path)
    net = edsr(EdsrConfig(**blob["config"]))
    load_model(path, net)
    return net.eval(), blob
