"""DistributedDataParallel plumbing for runs under ``torchrun`` (gloo on CPU, NCCL on CUDA).

Outside torchrun (no ``RANK``/``WORLD_SIZE`` in the environment) every helper is a no-op, so the
same script runs single-process or as ``torchrun --nproc_per_node N script.py ...``.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

import torch
import torch.distributed as dist


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


def ddp_launch_cmd(nproc: int, script: str, args: Sequence[str] = (), nnodes: int = 1, node_rank: int = 0,
                   rdzv_endpoint: str | None = None) -> list[str]:
    """The ``torchrun`` command line that runs ``script args`` on ``nproc`` processes per node.

    Single node uses ``--standalone``; multi-node needs ``rdzv_endpoint`` ("host:port" of node 0).
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd.append("--standalone")
    else:
        if rdzv_endpoint is None:
            raise ValueError("ddp_launch_cmd: multi-node runs need rdzv_endpoint='host:port' of node 0")
        cmd += [f"--nnodes={nnodes}", f"--node_rank={node_rank}", "--rdzv_backend=c10d",
                f"--rdzv_endpoint={rdzv_endpoint}"]
    return cmd + [script, *args]
