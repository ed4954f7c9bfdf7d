"""Style and content objectives on a loss network (Gatys et al. 2015), and pixel optimisation with L-BFGS.

A network's ``layers`` are its taps; ``content`` and ``style`` give each tap a weight (0 = unused). Each
layer's term is divided by its value for a **reference** image, so that the weights mean the same for
any network (a Darknet's activations and a VGG's differ by orders of magnitude) and nothing underflows
(the lecture's "loss x 1000" hack)::

    style(x)   = sum_i s_i MSE(G_i(x), G_i(style)) / MSE(G_i(ref_s), G_i(style))     ref_s = the content image
    content(x) = sum_i c_i MSE(F_i(x), F_i(content)) / MSE(F_i(ref_c), F_i(content)) ref_c = the style image

so ``style(content image) = sum_i s_i`` and ``content(style image) = sum_i c_i``: 1 means "as far as an
image of the other kind". The same normalised losses grade results on a separately seeded judge network.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from dlpipe.core.errors import ParamsError
from dlpipe.vision.loss_network import LossNetwork, gram


def check_weights(layers: Sequence[str], content: Sequence[float], style: Sequence[float], key: str) -> None:
    """One content and one style weight per layer, and some of each."""
    for name, w in (("content", content), ("style", style)):
        if len(w) != len(layers):
            raise ParamsError(f"{key}.{name}: {list(w)}: expected one weight per layer of {list(layers)}")
        if not any(v > 0 for v in w):
            raise ParamsError(f"{key}.{name}: {list(w)}: expected at least one layer with a weight > 0")


@dataclass
class StyleObjective:
    """Normalised content and style losses of images against one content and one style image."""
    net: LossNetwork
    content_w: list[float]
    style_w: list[float]
    content_feats: list[torch.Tensor]        # F_i(content), (1, c_i, h_i, w_i)
    style_grams: list[torch.Tensor]          # G_i(style), (1, c_i, c_i)
    c_ref: list[float]
    s_ref: list[float]

    def terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(content, style) losses of x (bs, 3, H, W), each a scalar."""
        feats = self.net(x)
        c = sum(w * F.mse_loss(f, t.expand_as(f)) / r for f, t, w, r in
                zip(feats, self.content_feats, self.content_w, self.c_ref) if w > 0)
        s = sum(w * F.mse_loss(gram(f), g.expand(f.shape[0], -1, -1)) / r for f, g, w, r in
                zip(feats, self.style_grams, self.style_w, self.s_ref) if w > 0)
        return c, s


def objective(net: LossNetwork, content: torch.Tensor, style: torch.Tensor, content_w: Sequence[float],
              style_w: Sequence[float]) -> StyleObjective:
    """Targets from ``content`` and ``style`` (1, 3, h, w) 0-1 of one size, references as in the module docstring."""
    if content.shape != style.shape:
        raise ValueError(f"objective: content {tuple(content.shape)} and style {tuple(style.shape)}: expected one size")
    with torch.no_grad():
        fc, fs = net(content), net(style)
        grams = [gram(f) for f in fs]
        c_ref = [max(float(F.mse_loss(a, b)), 1e-12) for a, b in zip(fs, fc)]     # same-size images: same shapes
        s_ref = [max(float(F.mse_loss(gram(a), g)), 1e-12) for a, g in zip(fc, grams)]
    return StyleObjective(net, list(content_w), list(style_w), fc, grams, c_ref, s_ref)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels (bs, 3, H, W) -> scalar: penalises the high-frequency
    noise a loss network cannot see but another network (and a viewer) does."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def lbfgs_pixels(obj: StyleObjective, init: torch.Tensor, content_weight: float, style_weight: float,
                 n_evals: int, history_size: int, desc: str = "L-BFGS", tv_weight: float = 0.0) -> tuple[torch.Tensor, list[dict]]:
    """Optimise the pixels of ``init`` (1, 3, H, W) with L-BFGS for ``n_evals`` loss evaluations, minimising
    ``content_weight * content + style_weight * style + tv_weight * total variation``.

    The pixels stay in [0, 1] (clamped after each evaluation, as PyTorch's neural-style tutorial does).
    Returns the image and one record per evaluation: total, content and style loss.
    """
    x = init.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)   # L-BFGS views grads flat
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=n_evals, max_eval=n_evals, history_size=history_size,
                            tolerance_grad=0.0, tolerance_change=0.0)
    history: list[dict] = []
    bar = tqdm(total=n_evals, desc=desc, unit="eval", mininterval=2.0, leave=False)

    def closure():
        with torch.no_grad():
            x.clamp_(0, 1)
        opt.zero_grad()
        c, s = obj.terms(x)
        loss = content_weight * c + style_weight * s + (tv_weight * total_variation(x) if tv_weight else 0.0)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: non-finite loss at evaluation {len(history)}")
        loss.backward()
        history.append({"eval": len(history), "loss": loss.item(), "content": float(c.detach()), "style": float(s.detach())})
        bar.update(1)
        return loss

    opt.step(closure)
    bar.close()
    with torch.no_grad():
        x.clamp_(0, 1)
    return x.detach(), history


def grade(judge: StyleObjective, image: torch.Tensor) -> dict:
    """The judge's normalised content and style losses of ``image`` (1 = as far as the other image)."""
    with torch.no_grad():
        c, s = judge.terms(image)
    return {"content": float(c) / sum(w for w in judge.content_w if w > 0),
            "style": float(s) / sum(w for w in judge.style_w if w > 0)}


def timed(fn: Callable, *args):
    """(fn(*args), seconds)."""
    import time

    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


class FeedForwardStyleLoss(torch.nn.Module):
    """Johnson et al.'s perceptual loss for training a transformer on one style: content against each
    input itself, style against the one painting's Grams; normalised per layer as above, with the
    references measured once on ``ref`` (a batch of photos: their own style distance, and the painting's
    content distance to them)."""

    def __init__(self, net: LossNetwork, content_w: Sequence[float], style_w: Sequence[float], style: torch.Tensor,
                 ref: torch.Tensor, content_weight: float, style_weight: float):
        super().__init__()
        self.net, self.cw, self.sw = net, list(content_w), list(style_w)
        self.content_weight, self.style_weight = content_weight, style_weight
        with torch.no_grad():
            self.grams = [gram(f) for f in net(style)]                          # (1, c, c) each
            fr, fs = net(ref), net(style.expand_as(ref))
            self.c_ref = [max(float(F.mse_loss(a, b)), 1e-12) for a, b in zip(fs, fr)]
            self.s_ref = [max(float(F.mse_loss(gram(f), g.expand(f.shape[0], -1, -1))), 1e-12)
                          for f, g in zip(fr, self.grams)]

    def terms(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.net.to(pred.device)
        with torch.no_grad():
            ft = self.net(target)
        fp = self.net(pred)
        c = sum(w * F.mse_loss(a, b) / r for a, b, w, r in zip(fp, ft, self.cw, self.c_ref) if w > 0)
        s = sum(w * F.mse_loss(gram(a), g.to(a.device).expand(a.shape[0], -1, -1)) / r
                for a, g, w, r in zip(fp, self.grams, self.sw, self.s_ref) if w > 0)
        return c, s

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        c, s = self.terms(pred, target)
        return self.content_weight * c + self.style_weight * s
