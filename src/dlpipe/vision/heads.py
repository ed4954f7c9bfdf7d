"""Heads that sit on a (frozen or precomputed) backbone's features, and the body+head classifier.

A head takes either flat features ``(bs, n_in)`` or feature maps ``(bs, n_in, h, w)``; maps are
pooled first (fastai's concat pooling: average and max side by side, so ``2 * n_in`` features)::

    (bs, C, h, w) --pool--> (bs, 2C) --[BN, dropout, linear, ReLU]--> (bs, n_hidden)   # mlp only
                                      --[BN, dropout, linear]-------> (bs, n_out)

The same head module is trained on stored features (no backbone forward at all) and then put
on top of the backbone cut at the same named layer for fine-tuning, so its weights carry over.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Literal

import torch
from torch import nn

ParamGroups = list[list[nn.Parameter]]     # as dlpipe.train.param_groups (no engine import for a head)


@dataclass(frozen=True)
class HeadConfig:
    """Shape of a head; travels inside its checkpoint."""
    n_in: int = field(metadata=dict(ge=1))       # channels of the feature map, or width of flat features
    n_out: int = field(metadata=dict(ge=1))      # classes, or word-vector size for DeViSE
    kind: Literal["linear", "mlp"]
    n_hidden: int = field(metadata=dict(ge=1))   # mlp only
    ps: float = field(metadata=dict(ge=0.0, lt=1.0))   # dropout before each linear layer
    pool: Literal["concat", "avg"]               # how feature maps become vectors


@dataclass(frozen=True)
class HeadParams:
    """A head's architecture as params.yaml gives it (`vision.head`, `vision.devise.head`); sizes come from data."""
    kind: Literal["linear", "mlp"]
    n_hidden: int = field(metadata=dict(ge=1))
    ps: float = field(metadata=dict(ge=0.0, lt=1.0))
    pool: Literal["concat", "avg"]

    def config(self, n_in: int, n_out: int) -> HeadConfig:
        return HeadConfig(n_in=n_in, n_out=n_out, kind=self.kind, n_hidden=self.n_hidden, ps=self.ps, pool=self.pool)


class Pool(nn.Module):
    """Feature maps ``(bs, C, h, w)`` -> ``(bs, C)`` (avg) or ``(bs, 2C)`` (concat); flat input passes."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x
        if x.dim() != 4:
            raise ValueError(f"head: expected features (bs, n) or maps (bs, C, h, w), got {tuple(x.shape)}")
        avg = x.mean(dim=(2, 3))
        return torch.cat([avg, x.amax(dim=(2, 3))], dim=1) if self.kind == "concat" else avg


def pooled_width(cfg: HeadConfig, maps: bool) -> int:
    """Width after pooling: concat pooling doubles the channels of feature maps."""
    return cfg.n_in * 2 if maps and cfg.pool == "concat" else cfg.n_in


class Head(nn.Module):
    """Pool -> (mlp: BN, dropout, linear, ReLU) -> BN, dropout, linear. Layers are named for the splitter."""

    def __init__(self, cfg: HeadConfig, maps: bool):
        super().__init__()
        self.cfg, self.maps = cfg, maps
        self.pool = Pool(cfg.pool)
        width = pooled_width(cfg, maps)
        if cfg.kind == "mlp":
            self.hidden = nn.Sequential(nn.BatchNorm1d(width), nn.Dropout(cfg.ps),
                                        nn.Linear(width, cfg.n_hidden), nn.ReLU(inplace=True))
            width = cfg.n_hidden
        else:
            self.hidden = nn.Identity()
        self.out = nn.Sequential(nn.BatchNorm1d(width), nn.Dropout(cfg.ps), nn.Linear(width, cfg.n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(self.pool(x)))   # (bs, n_out)

    def splitter(self, model: nn.Module | None = None) -> ParamGroups:
        """One group: a head alone is trained as a whole."""
        return [list(self.parameters())]


def make_head(cfg: HeadConfig, row_shape: tuple[int, ...]) -> Head:
    """Build a head for features whose rows have ``row_shape`` (``(C,)`` or ``(C, h, w)``)."""
    if len(row_shape) not in (1, 3) or row_shape[0] != cfg.n_in:
        raise ValueError(f"head: n_in={cfg.n_in} does not fit feature rows of shape {tuple(row_shape)} "
                         "(expected (n_in,) or (n_in, h, w))")
    return Head(cfg, maps=len(row_shape) == 3)


def head_state(head: Head) -> dict:
    """What a head checkpoint's config holds: enough to rebuild it."""
    return {"head": asdict(head.cfg), "maps": head.maps}


def head_from_state(config: dict) -> Head:
    """Rebuild an (untrained) head from :func:`head_state`'s dict."""
    return Head(HeadConfig(**config["head"]), maps=bool(config["maps"]))


def split_body(body: nn.Module) -> ParamGroups:
    """Backbone cut ``(stem, group0, .., pool)`` -> [stem + first half of the groups], [the rest].

    The darknet splitter's rule for its body; a body with a single parameterised child is one group.
    """
    named = [(n, m) for n, m in body.named_children() if any(True for _ in m.parameters())]
    groups = [n for n, _ in named if n.startswith("group")]
    early = {n for n, _ in named if not n.startswith("group")} | set(groups[: len(groups) // 2])
    out = [[p for n, m in named if n in early for p in m.parameters()],
           [p for n, m in named if n not in early for p in m.parameters()]]
    return [g for g in out if g]


class Classifier(nn.Module):
    """``body`` (backbone cut at the feature layer) followed by ``head``.

    ``body_splitter(body)`` gives the backbone's layer groups (input side first); the head is
    the last group, so ``freeze_to(-1)`` trains the head alone and ``slice(lo, hi)`` gives the
    backbone's early layers the smallest learning rates.
    """

    def __init__(self, body: nn.Module, head: Head, body_splitter: Callable[[nn.Module], ParamGroups]):
        super().__init__()
        self.body, self.head = body, head
        self._body_splitter = body_splitter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def splitter(self, model: nn.Module | None = None) -> ParamGroups:
        groups = [g for g in self._body_splitter(self.body) if g]
        return groups + [list(self.head.parameters())]
