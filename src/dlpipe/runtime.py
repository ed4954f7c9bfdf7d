"""Device choice, seeding and thread count: the few process-wide settings every stage makes."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; anything else is passed to torch."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' requested but CUDA is not available (use device: auto)")
    return dev


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(n: int) -> None:
    """Set torch's intra-op threads; 0 keeps torch's default."""
    if n > 0:
        torch.set_num_threads(n)


@dataclass(frozen=True)
class RuntimeParams:
    """The shared `runtime` section of params.yaml, read by every training stage."""
    device: str                                  # auto | cpu | cuda | cuda:N
    num_threads: int = field(metadata=dict(ge=0))
    seed: int


def apply(rt: RuntimeParams) -> None:
    """Set torch's threads and seed everything, as every training stage does first."""
    set_threads(rt.num_threads)
    seed_everything(rt.seed)
