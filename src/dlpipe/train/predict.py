"""The one inference loop: a model over batches, in eval mode, without gradients, on the run's device."""
from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch import nn

from dlpipe.core.runtime import pick_device


def _to(x, device: torch.device):
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    return type(x)(_to(v, device) for v in x)


def predict_batches(model: nn.Module, batches: Iterable, device: str | torch.device = "auto") -> Iterator[torch.Tensor]:
    """Yield ``model(*batch)`` for each batch (a tensor or a tuple of inputs) as a float tensor on CPU.

    The model moves to ``device`` ("auto": CUDA when present) and runs in eval mode; it is left there.
    """
    device = pick_device(device) if isinstance(device, str) else device
    model.eval().to(device)
    for xb in batches:
        with torch.no_grad():     # per call: grad mode must not stay off while the caller holds the generator
            out = model(*_to(xb, device)) if isinstance(xb, (tuple, list)) else model(_to(xb, device))
        yield out.float().cpu()


def predict(model: nn.Module, batches: Iterable, device: str | torch.device = "auto") -> torch.Tensor:
    """All of :func:`predict_batches` concatenated along the batch dimension."""
    return torch.cat(list(predict_batches(model, batches, device)))
