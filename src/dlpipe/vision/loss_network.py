"""A loss network (Gatys et al. 2015; Johnson et al. 2016; 2018 lesson 14's FeatureLoss): a frozen CNN
whose chosen layers' activations define content (feature distance) and style (Gram-matrix distance).

Sources (a task's ``loss_network.source``):

* ``backbone`` — the Darknet file dvc.yaml passes (ours from CIFAR-10 by default, or the MNIST one);
  layers are its named children (``stem``, ``group0``, ...).
* ``random_vgg:<arch>`` — torchvision's VGG (``vgg16``, ``vgg19``...) with **random** weights from
  ``seed`` (He et al. 2016 and Ustyuzhaninov et al. 2016: random filters already carry texture);
  layers are graph nodes (``features.3`` = relu1_2, ``features.8`` = relu2_2, ``features.15`` = relu3_3).
* ``torchvision:<arch>`` — that architecture with a local state_dict file (ImageNet weights a user has;
  never a download), same layer names.

Input is 0-1 RGB; the network normalises with its own stats. Every weight is frozen and BatchNorm stays
in eval mode whatever the caller does, so the loss is a fixed function of the image::

    x (bs, 3, H, W) 0-1 -> [f_1 (bs, c_1, H/s_1, W/s_1), ..., f_k]        gram(f) (bs, c, c)
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.core.errors import ParamsError
from dlpipe.vision.encoder import IMAGENET_STATS, Encoder, build_encoder, load_encoder


class LossNetwork(nn.Module):
    """A frozen :class:`Encoder` (its taps = the loss layers) that stays in eval mode."""

    def __init__(self, encoder: Encoder, info: dict):
        super().__init__()
        self.net, self.info = encoder, info
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True) -> "LossNetwork":
        return super().train(False)        # BN statistics are part of the fixed loss

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net(x)


def load_loss_network(source: str, path: str | os.PathLike | None, layers: Sequence[str], seed: int = 0,
                      key: str = "loss_network") -> LossNetwork:
    """The loss network of ``source`` (see the module docstring); ``key`` is the params section errors name."""
    layers = list(layers)
    if source == "backbone":
        enc, info = load_encoder(None, path, layers, key=key)
    elif source.startswith("torchvision:"):
        enc, info = load_encoder(source, path, layers, key=key)
    elif source.startswith("random_vgg:"):
        arch = source.split(":", 1)[1]
        if not arch.startswith("vgg"):
            raise ParamsError(f"{key}.source: {source!r}: expected random_vgg:vgg11/13/16/19[_bn]")
        spec = {"kind": "torchvision", "arch": arch, "taps": layers, "mean": IMAGENET_STATS[0], "std": IMAGENET_STATS[1]}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)                 # the same random filters for every run with this seed
            enc = build_encoder(spec, key)
        info = {"source": f"{source} (seed {seed})", "taps": layers, "channels": enc.channels, "strides": enc.strides}
    else:
        raise ParamsError(f"{key}.source: {source!r}: expected backbone, random_vgg:<arch> or torchvision:<arch>")
    return LossNetwork(enc, {k: info[k] for k in ("source", "taps", "channels", "strides")})


def gram(f: torch.Tensor) -> torch.Tensor:
    """(bs, c, h, w) -> (bs, c, c) feature correlations / (c h w): what a style loss compares."""
    bs, c, h, w = f.shape
    x = f.reshape(bs, c, h * w)
    if bs == 1:        # one image (Gatys): a plain matmul is ~1.4x faster than a batch-of-one bmm on CPU
        return (x[0] @ x[0].t() / (c * h * w))[None]
    return x @ x.transpose(1, 2) / (c * h * w)


def content_loss(feats: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """sum_i w_i MSE(f_i, t_i) over the content layers."""
    return sum(w * F.mse_loss(f, t) for f, t, w in zip(feats, targets, weights))


def style_loss(feats: Sequence[torch.Tensor], target_grams: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """sum_i w_i MSE(gram(f_i), G_i); a (1, c, c) target broadcasts over the batch."""
    return sum(w * F.mse_loss(gram(f), g.expand(f.shape[0], -1, -1)) for f, g, w in zip(feats, target_grams, weights))


class PerceptualLoss(nn.Module):
    """fastai's FeatureLoss (2018 lesson 14): pixel L1 + per-layer feature L1 + Gram L1, for image-to-image
    training (super-resolution fine-tuning, fast style transfer's content term)::

        pixel_weight |y - t| + sum_i w_i |f_i(y) - f_i(t)| + gram_weight sum_i w_i^2 |G_i(y) - G_i(t)|
    """

    def __init__(self, net: LossNetwork, layer_weights: Sequence[float], pixel_weight: float, gram_weight: float):
        super().__init__()
        if len(layer_weights) != len(net.info["taps"]):
            raise ParamsError(f"layer_weights {list(layer_weights)}: expected one per loss layer {net.info['taps']}")
        self.net, self.w = net, list(layer_weights)
        self.pixel_weight, self.gram_weight = pixel_weight, gram_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.net.to(pred.device)
        with torch.no_grad():
            ft = self.net(target)
        fp = self.net(pred)
        loss = self.pixel_weight * F.l1_loss(pred, target)
        loss = loss + sum(w * F.l1_loss(a, b) for a, b, w in zip(fp, ft, self.w))
        if self.gram_weight:
            loss = loss + self.gram_weight * sum(w * w * F.l1_loss(gram(a), gram(b)) for a, b, w in zip(fp, ft, self.w))
        return loss
