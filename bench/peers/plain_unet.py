"""The peer of bench/unet_train.py: the same U-Net written as one plain PyTorch module (no dlpipe import).

Darknet encoder (conv-BN-LeakyReLU stem, stride-2 groups of residual 1x1/3x3 layers), decoder of
pixel-shuffle upsamplings, concatenated BN+ReLU skips and conv-BN-ReLU pairs, an input cross and a
1x1 head — the layer list of ``dlpipe.models.unet`` at the sample scale's widths, in the same order,
so the runner can load dlpipe's weights into it by position and check both compute the same function.

Worker use: python bench/peers/plain_unet.py BS H W STEPS WARMUP NF LAYERS(comma) N_CLASSES MEMORY_FORMAT [WEIGHTS]
(WEIGHTS: a list of tensors, loaded by position: both sides then time the same weights)
"""
from __future__ import annotations

import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


def cbl(ni, nf, ks=3, stride=1):
    return nn.Sequential(nn.Conv2d(ni, nf, ks, stride, ks // 2, bias=False), nn.BatchNorm2d(nf), nn.LeakyReLU(0.1, True))


def cbr(ni, nf, ks=3):
    return nn.Sequential(nn.Conv2d(ni, nf, ks, 1, ks // 2, bias=False), nn.BatchNorm2d(nf), nn.ReLU(True))


class Res(nn.Module):
    def __init__(self, ni):
        super().__init__()
        self.a, self.b = cbl(ni, ni // 2, 1), cbl(ni // 2, ni)

    def forward(self, x):
        return x + self.b(self.a(x))


class Up(nn.Module):
    def __init__(self, up_in, tap_c):
        super().__init__()
        half = up_in // 2
        self.shuf = nn.Sequential(nn.Conv2d(up_in, half * 4, 1), nn.PixelShuffle(2), nn.ReLU(True))
        self.bn = nn.BatchNorm2d(tap_c)
        self.out_c = (half + tap_c) // 2
        self.conv = nn.Sequential(cbr(half + tap_c, self.out_c), cbr(self.out_c, self.out_c))

    def forward(self, h, tap):
        return self.conv(torch.cat([self.shuf(h), F.relu(self.bn(tap))], 1))


class PlainUnet(nn.Module):
    """Taps: stem (stride 1) and every group (strides 2, 4, 8, ...)."""

    def __init__(self, nf, layers, n_classes, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.stem = cbl(3, nf)
        groups, chans, c = [], [nf], nf
        for n in layers:
            groups.append(nn.Sequential(cbl(c, 2 * c, stride=2), *[Res(2 * c) for _ in range(n)]))
            c *= 2
            chans.append(c)
        self.groups = nn.ModuleList(groups)
        self.middle = nn.Sequential(cbr(c, 2 * c), cbr(2 * c, c))
        ups = []
        for tap_c in reversed(chans[:-1]):
            ups.append(Up(c, tap_c))
            c = ups[-1].out_c
        self.ups = nn.ModuleList(ups)
        self.cross = nn.Sequential(cbr(c + 3, c), cbr(c, c))
        self.head = nn.Conv2d(c, n_classes, 1)

    def forward(self, x):
        h = self.stem((x - self.mean) / self.std)
        taps = [h]
        for g in self.groups:
            h = g(h)
            taps.append(h)
        h = self.middle(h)
        for up, tap in zip(self.ups, reversed(taps[:-1])):
            h = up(h, tap)
        return self.head(self.cross(torch.cat([h, x], 1)))


def batches(bs, h, w, n, n_classes, seed=0):
    """The timed batches both sides train on: seeded images in [0, 1] and labels (void = n_classes)."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(bs, 3, h, w, generator=g), torch.randint(0, n_classes + 1, (bs, h, w), generator=g))
            for _ in range(n)]


def time_steps(net, data, n_classes, fmt, warmup):
    """fwd + bwd + Adam step per batch; end time of each batch after the warm-up ones."""
    net = net.to(memory_format=fmt).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    stamps, losses = [], []
    for i, (x, y) in enumerate(data):
        x = x.contiguous(memory_format=fmt)
        loss = F.cross_entropy(net(x), y, ignore_index=n_classes)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        if i >= warmup - 1:
            stamps.append(time.perf_counter())
    return stamps, losses


def main(a):
    bs, h, w, steps, warmup, nf = map(int, a[:6])
    layers, n_classes, fmt = [int(v) for v in a[6].split(",")], int(a[7]), a[8]
    torch.set_num_threads(2)
    torch.manual_seed(0)
    net = PlainUnet(nf, layers, n_classes, [0.49, 0.48, 0.45], [0.25, 0.24, 0.26])
    if len(a) > 9:
        net.load_state_dict(dict(zip(net.state_dict(), torch.load(a[9]))))
    stamps, losses = time_steps(net, batches(bs, h, w, warmup + steps, n_classes), n_classes,
                                torch.channels_last if fmt == "channels_last" else torch.contiguous_format, warmup)
    print(json.dumps({"step_end_s": [s - stamps[0] for s in stamps], "loss": losses,
                      "n_params": sum(p.numel() for p in net.parameters())}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
