"""Deep Dream (Mordvintsev et al. 2015; the TF 2.0 talk's tutorial): gradient *ascent* on the pixels to
maximise chosen layers' mean activation, over octaves (small scale first, the detail added carried up to
the next scale) with random jitter (a shift rolled back after each step, so no grid pattern settles)::

    for each octave, smallest first:     x_o = resize(base, scale^-(k)) + resize(detail so far)
        steps x: roll by (dy, dx) -> g = d mean(act(x)) / dx -> x += step_size g / mean|g| -> unroll
        detail = x_o - resize(base, that size)
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm


def octave_sizes(h: int, w: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """(h, w) of each octave, smallest first, the last the full size."""
    return [(max(8, round(h / scale ** k)), max(8, round(w / scale ** k))) for k in range(octaves - 1, -1, -1)]


def dream_step(x: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor], step_size: float, jitter: int,
               g: torch.Generator) -> torch.Tensor:
    """One normalised ascent step at a random shift; returns the new (1, 3, h, w) image in [0, 1]."""
    dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=g)) if jitter else (0, 0)
    x = torch.roll(x, (dy, dx), dims=(2, 3)).detach().requires_grad_(True)
    s = score(x)
    (grad,) = torch.autograd.grad(s, x)
    with torch.no_grad():
        x = x + step_size * grad / grad.abs().mean().clamp_min(1e-8)
    return torch.roll(x, (-dy, -dx), dims=(2, 3)).clamp(0, 1).detach()


def deep_dream(base: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor], octaves: int, octave_scale: float,
               steps: int, step_size: float, jitter: int, seed: int, desc: str = "dream") -> torch.Tensor:
    """The dreamt version of ``base`` (1, 3, H, W) 0-1 at its own size."""
    g = torch.Generator().manual_seed(seed)
    sizes = octave_sizes(base.shape[2], base.shape[3], octaves, octave_scale)
    detail = torch.zeros_like(F.interpolate(base, size=sizes[0], mode="bilinear", align_corners=False))
    bar = tqdm(total=len(sizes) * steps, desc=desc, unit="step", mininterval=2.0, leave=False)
    for size in sizes:
        here = F.interpolate(base, size=size, mode="bilinear", align_corners=False, antialias=True)
        x = (here + F.interpolate(detail, size=size, mode="bilinear", align_corners=False)).clamp(0, 1)
        for _ in range(steps):
            x = dream_step(x, score, step_size, jitter, g)
            bar.update(1)
        detail = x - here
    bar.close()
    return x


def activation_score(net, taps: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> the mean activation of the loss network's taps ``taps`` (indices), summed."""
    def score(x: torch.Tensor) -> torch.Tensor:
        feats = net(x)
        return sum(feats[i].mean() for i in taps)
    return score
