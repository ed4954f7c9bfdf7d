"""DistributedDataParallel plumbing for runs under ``torchrun`` (gloo on CPU, NCCL on CUDA).

Outside torchrun (no ``RANK``/``WORLD_SIZE`` in the environment) every helper is a no-op, so the
same script runs single-process or as ``torchrun --nproc_per_node N script.py ...``. Relaunching a
stage under torchrun is :mod:`dlpipe.core.launch` (no torch import needed for that).
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.distributed as dist

from dlpipe.core.runtime import init_from_env  # noqa: F401  (re-exported: the engine's API)


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_dist() else 0


def world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main() -> bool:
    """True on the process that writes checkpoints, logs and plots (rank 0)."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """Under DDP on CUDA each process uses ``cuda:LOCAL_RANK``."""
    if is_dist() and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Sum a few floats across ranks (identity without DDP). Float64 so sums stay exact enough."""
    if not is_dist():
        return [float(v) for v in values]
    dev = device if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=dev)
    dist.all_reduce(t)
    return t.tolist()


def all_gather_object(obj) -> list:
    """Every rank's ``obj`` (a one-element list without DDP)."""
    if not is_dist():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if is_dist():
        dist.barrier()


def wrap_ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Wrap ``model`` in DDP when running distributed, else return it unchanged.

    Wrapped afresh for each ``fit`` because DDP fixes the set of trainable parameters at
    construction and freezing changes it between phases.
    """
    if not is_dist():
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP
    ids = [device.index] if device.type == "cuda" else None
    return DDP(model, device_ids=ids)
