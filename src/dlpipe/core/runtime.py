"""Device choice, seeding, thread count and the DDP process group: the process-wide settings every
training stage makes first."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist


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
    """Set torch's intra-op threads; 0 keeps torch's default.

    Under torchrun the ``n`` threads are shared by the node's processes (``n // LOCAL_WORLD_SIZE``
    each, at least 1): two processes of 2 threads on 2 cores would only fight over them.
    """
    if n > 0:
        torch.set_num_threads(max(1, n // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def init_from_env() -> tuple[int, int, int]:
    """Join the process group described by torchrun's env vars; returns ``(rank, world_size, local_rank)``.

    A no-op returning ``(0, 1, 0)`` when ``WORLD_SIZE`` is absent or 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return rank, world, local_rank


@dataclass(frozen=True)
class RuntimeParams:
    """The shared `runtime` section of params.yaml, read by every training stage."""
    device: str                                  # auto | cpu | cuda | cuda:N
    num_threads: int = field(metadata=dict(ge=0))
    seed: int
    nproc_per_node: int = field(default=1, metadata=dict(ge=1))   # > 1: training stages run under torchrun


def apply(rt: RuntimeParams) -> None:
    """Join the DDP process group (under torchrun), set torch's threads and seed everything.

    Every rank uses the same seed: the initial weights agree, and dropout masks drawn once per step
    (weight drop, embedding dropout) are the same on every rank, as in a single-process step.
    """
    init_from_env()
    set_threads(rt.num_threads)
    seed_everything(rt.seed)
