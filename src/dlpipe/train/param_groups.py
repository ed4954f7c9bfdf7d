"""Parameter groups: splitters, freezing, discriminative learning rates and optimizer factories.

A splitter maps a model to ``list[list[Parameter]]``: layer groups, input side first. Freezing
and discriminative LRs (ULMFiT's lr/2.6^k, fastai's ``slice(lo, hi)``) are built on it.
Weight decay is applied by the learner (decoupled, ``p *= 1 - lr*wd``) to parameters that have a
gradient, so optimizers are built with ``weight_decay=0`` and frozen parameters never decay.
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
from torch import nn

ParamGroups = list[list[nn.Parameter]]
OptFactory = Callable[[list[dict]], torch.optim.Optimizer]
LR = Union[float, slice, Sequence[float]]
BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


def default_splitter(model: nn.Module) -> ParamGroups:
    """One group holding every parameter."""
    return [list(model.parameters())]


def check_splitter(model: nn.Module, groups: ParamGroups) -> None:
    """Raise ValueError unless ``groups`` covers every parameter of ``model`` exactly once."""
    names = {id(p): n for n, p in model.named_parameters()}
    seen: dict[int, int] = {}
    for g, ps in enumerate(groups):
        if len(ps) == 0:
            raise ValueError(f"splitter: group {g} is empty")
        for p in ps:
            if id(p) not in names:
                raise ValueError(f"splitter: group {g} holds a parameter {tuple(p.shape)} that is not in the model")
            if id(p) in seen:
                raise ValueError(f"splitter: '{names[id(p)]}' is in groups {seen[id(p)]} and {g}")
            seen[id(p)] = g
    missing = [n for i, n in names.items() if i not in seen]
    if missing:
        raise ValueError(f"splitter: {len(missing)} parameter(s) in no group, e.g. {missing[:5]}")


def even_mults(lo: float, hi: float, n: int) -> list[float]:
    """``n`` values spaced geometrically from ``lo`` to ``hi`` (fastai's rule for ``slice``)."""
    if n == 1:
        return [hi]
    step = (hi / lo) ** (1 / (n - 1))
    return [lo * step**i for i in range(n)]


def discriminative(lr: float, n_groups: int, factor: float = 2.6) -> list[float]:
    """ULMFiT's discriminative LRs: the last group gets ``lr``, group k from the end ``lr/factor^k``."""
    return [lr / factor ** (n_groups - 1 - i) for i in range(n_groups)]


def lr_per_group(lr: LR, n_groups: int) -> list[float]:
    """Expand ``lr`` to one value per group.

    A float is used for all groups; ``slice(lo, hi)`` spaces lrs geometrically from lo (first
    group) to hi (last); ``slice(hi)`` gives hi/10 to every group but the last (fastai); a list
    must have one lr per group.
    """
    if isinstance(lr, slice):
        if lr.start is None:
            return [lr.stop / 10] * (n_groups - 1) + [lr.stop]
        return even_mults(lr.start, lr.stop, n_groups)
    if isinstance(lr, (list, tuple)):
        if len(lr) != n_groups:
            raise ValueError(f"lr: got {len(lr)} learning rates for {n_groups} parameter groups")
        return [float(x) for x in lr]
    return [float(lr)] * n_groups


def freeze_to(model: nn.Module, groups: ParamGroups, n: int, train_bn: bool = True) -> None:
    """Freeze groups before ``n`` (negative counts from the end) and unfreeze the rest.

    With ``train_bn`` the parameters of BatchNorm layers stay trainable in frozen groups (fastai).
    """
    start = n if n >= 0 else len(groups) + n
    for i, ps in enumerate(groups):
        for p in ps:
            p.requires_grad_(i >= start)
    if train_bn:
        for m in model.modules():
            if isinstance(m, BN_TYPES):
                for p in m.parameters(recurse=False):
                    p.requires_grad_(True)


def adamw(betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-6) -> OptFactory:
    """Factory for Adam with (learner-applied) decoupled weight decay: ``param_groups -> Optimizer``."""
    def make(param_groups: list[dict]) -> torch.optim.Optimizer:
        return torch.optim.AdamW(param_groups, lr=1e-3, betas=betas, eps=eps, weight_decay=0.0)
    return make


def sgd(momentum: float = 0.9, nesterov: bool = False) -> OptFactory:
    """Factory for SGD with momentum and (learner-applied) decoupled weight decay (fastai ``true_wd``)."""
    def make(param_groups: list[dict]) -> torch.optim.Optimizer:
        return torch.optim.SGD(param_groups, lr=1e-3, momentum=momentum, nesterov=nesterov, weight_decay=0.0)
    return make


def set_mom(group: dict, mom: float) -> None:
    """Set momentum (SGD) or beta1 (Adam family) of one optimizer param group."""
    if "betas" in group:
        group["betas"] = (mom, group["betas"][1])
    elif "momentum" in group:
        group["momentum"] = mom
