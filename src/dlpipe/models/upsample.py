"""Pixel-shuffle upsampling with ICNR initialisation (Shi et al. 2016; Aitken et al. 2017), shared by
the U-Net decoder and super-resolution.

A conv to ``nf * r**2`` channels followed by ``nn.PixelShuffle(r)`` learns an upsampling, but from a
random init its ``r**2`` sub-kernels differ and the output shows a checkerboard. ICNR initialises one
sub-kernel (kaiming) and copies it to all ``r**2`` positions, so at init the layer equals
nearest-neighbour upsampling of a single conv — smooth — and training departs from there::

    x (bs, ni, H, W) -> conv ni -> nf*r*r (bs, nf*r*r, H, W) -> shuffle (bs, nf, r*H, r*W) -> act
"""
from __future__ import annotations

import torch
from torch import nn


def icnr_(weight: torch.Tensor, scale: int = 2, init=nn.init.kaiming_normal_) -> torch.Tensor:
    """In place: a conv weight (nf * scale**2, ni, k, k) whose scale**2 sub-kernels are one ``init`` kernel.

    PixelShuffle takes output channel ``c * scale**2 + s`` to sub-position ``s`` of channel ``c``, so
    the copies are the repeat of each base kernel scale**2 times along dim 0.
    """
    n_out, ni, *k = weight.shape
    if n_out % (scale * scale):
        raise ValueError(f"icnr: {n_out} output channels are not a multiple of scale**2 = {scale * scale}")
    base = init(torch.empty(n_out // (scale * scale), ni, *k))          # (nf, ni, k, k)
    with torch.no_grad():
        weight.copy_(base.repeat_interleave(scale * scale, dim=0))      # (nf * s*s, ni, k, k)
    return weight


class PixelShuffleICNR(nn.Sequential):
    """Upsample by ``scale``: conv (ICNR init) -> PixelShuffle -> activation; optional blur (fastai's
    replication pad + avg pool) removes the last of the checkerboard after training."""

    def __init__(self, ni: int, nf: int, scale: int = 2, blur: bool = False, act: nn.Module | None = None):
        conv = nn.Conv2d(ni, nf * scale * scale, 1)
        icnr_(conv.weight, scale)
        nn.init.zeros_(conv.bias)
        layers = [conv, nn.PixelShuffle(scale), act if act is not None else nn.ReLU(inplace=True)]
        if blur:
            layers += [nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1)]
        super().__init__(*layers)
