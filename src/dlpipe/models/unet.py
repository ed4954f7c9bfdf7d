"""U-Net (Ronneberger et al. 2015; fastai's DynamicUnet, 2018 lesson 14) over a multi-scale encoder.

The decoder climbs the encoder's taps back up: at each level a pixel shuffle (ICNR init) doubles the
resolution and halves the channels, the tap of that resolution joins through BN + ReLU
(concatenation: the skip connection), two conv-BN-ReLU mix them. With ``skip=False`` the same head
climbs without the taps (the lesson's "plain upsample head" baseline)::

    x (bs, 3, H, W) 0-1
    encoder taps    t0 (c0, H/s0) ... t3 (c3, H/s3)         e.g. Darknet stem/group0/1/2: s = 1, 2, 4, 8
    middle          conv c3 -> 2 c3 -> c3                    (bs, c3, H/s3, W/s3)
    up i (i = 2..0) shuffle -> c/2, [+ BN(t_i)], conv x2 -> (c/2 + c_i) / 2    (bs, ., H/s_i, W/s_i)
    final up        to stride 1 if s0 > 1 (no tap)           (bs, c, H, W)
    cross           [+ x] two conv-BN-ReLU (fastai's last_cross; skip only)
    head            conv1x1 -> n_classes                      (bs, n_classes, H, W)

A level whose upsampled size differs from its tap (odd sizes: stride-2 convs round up) is resized to
the tap's size, and the output to the input's, so any H x W works.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.models.upsample import PixelShuffleICNR


@dataclass(frozen=True)
class UnetConfig:
    n_classes: int = field(metadata=dict(ge=1))
    encoder: dict                      # the encoder's spec (dlpipe.vision.encoder.build_encoder)
    skip: bool = True                  # False: the same decoder without skip connections
    blur: bool = False                 # blur after each pixel shuffle (fastai)


def conv_bn_relu(ni: int, nf: int, ks: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(ni, nf, ks, padding=ks // 2, bias=False), nn.BatchNorm2d(nf), nn.ReLU(inplace=True))


def _up(ni: int, nf: int, scale: int, blur: bool) -> nn.Module:
    """Pixel shuffle by ``scale`` (a power of 2, one x2 step each), or a 1x1 conv when scale is 1."""
    if scale == 1:
        return conv_bn_relu(ni, nf, ks=1)
    if scale & (scale - 1):
        raise ValueError(f"unet: taps {scale}x apart in stride; expected a power of 2")
    steps = []
    while scale > 1:
        steps.append(PixelShuffleICNR(ni, nf, 2, blur=blur))
        ni, scale = nf, scale // 2
    return nn.Sequential(*steps)


class UnetBlock(nn.Module):
    """Upsample ``up`` (bs, up_in, h, w) to the tap's size, concatenate BN(tap) if ``skip``, two convs."""

    def __init__(self, up_in: int, tap_c: int, scale: int, skip: bool, blur: bool):
        super().__init__()
        up_out = up_in // 2
        self.up = _up(up_in, up_out, scale, blur)
        self.bn = nn.BatchNorm2d(tap_c) if skip else None
        ni = up_out + tap_c
        self.out_c = ni // 2            # the same widths with and without the skip
        self.conv = nn.Sequential(conv_bn_relu(up_out + (tap_c if skip else 0), self.out_c),
                                  conv_bn_relu(self.out_c, self.out_c))

    def forward(self, up: torch.Tensor, tap: torch.Tensor) -> torch.Tensor:
        h = self.up(up)
        if h.shape[-2:] != tap.shape[-2:]:
            h = F.interpolate(h, size=tap.shape[-2:], mode="nearest")
        if self.bn is not None:
            h = torch.cat([h, F.relu(self.bn(tap))], dim=1)        # (bs, up_out + tap_c, h', w')
        return self.conv(h)


class Unet(nn.Module):
    def __init__(self, cfg: UnetConfig, encoder: nn.Module):
        super().__init__()
        self.cfg, self.encoder = cfg, encoder
        chans, strides = encoder.channels, encoder.strides
        c = chans[-1]
        self.middle = nn.Sequential(conv_bn_relu(c, 2 * c), conv_bn_relu(2 * c, c))
        blocks = []
        for i in range(len(chans) - 2, -1, -1):            # deepest tap first
            blocks.append(UnetBlock(c, chans[i], strides[i + 1] // strides[i], cfg.skip, cfg.blur))
            c = blocks[-1].out_c
        self.blocks = nn.ModuleList(blocks)
        self.final_up = _up(c, c, strides[0], cfg.blur) if strides[0] > 1 else nn.Identity()
        n_in = c + 3 if cfg.skip else c
        self.cross = nn.Sequential(conv_bn_relu(n_in, c), conv_bn_relu(c, c))
        self.head = nn.Conv2d(c, cfg.n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = self.encoder(x)
        h = self.middle(taps[-1])
        for block, tap in zip(self.blocks, reversed(taps[:-1])):
            h = block(h, tap)
        h = self.final_up(h)
        if h.shape[-2:] != x.shape[-2:]:
            h = F.interpolate(h, size=x.shape[-2:], mode="nearest")
        if self.cfg.skip:
            h = torch.cat([h, x], dim=1)                           # (bs, c + 3, H, W)
        return self.head(self.cross(h))                            # (bs, n_classes, H, W)

    def splitter(self, model: nn.Module | None = None) -> list[list[nn.Parameter]]:
        return unet_splitter(self if model is None else model)


def unet_splitter(model: Unet) -> list[list[nn.Parameter]]:
    """[encoder, input side], [encoder, output side], [decoder + head]: freeze_to(-1) trains the decoder."""
    early, late = model.encoder.param_groups()
    enc = {id(p) for p in model.encoder.parameters()}
    return [early, late, [p for p in model.parameters() if id(p) not in enc]]


def unet(cfg: UnetConfig, encoder: nn.Module) -> Unet:
    """Factory: kaiming-normal decoder convs (the pixel shuffles keep their ICNR init)."""
    model = Unet(cfg, encoder)
    shuffles = {id(m[0]) for m in model.modules() if isinstance(m, PixelShuffleICNR)}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and not name.startswith("encoder") and id(m) not in shuffles:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


def load_unet(path) -> tuple[Unet, dict]:
    """A U-Net saved by :func:`dlpipe.io.checkpoint.save_model` (weights loaded) and the file's blob."""
    from dlpipe.io.checkpoint import load_model
    from dlpipe.vision.encoder import build_encoder

    blob = load_model(path)
    cfg = UnetConfig(**blob["config"])
    model = Unet(cfg, build_encoder(cfg.encoder))
    load_model(path, model)
    return model, blob
