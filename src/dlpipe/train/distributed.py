"""DistributedDataParallel plumbing for runs under ``torchrun`` (gloo on CPU, NCCL on CUDA).

Outside torchrun (no ``RANK``/``WORLD_SIZE`` in the environment) every helper is a no-op, so the
same script runs single-process or as ``torchrun --nproc_per_node N script.py ...``. A stage script
calls :func:`launch` first: with ``runtime.nproc_per_node > 1`` in params (or ``DLPIPE_NNODES > 1``
in the environment) it re-runs itself under torchrun and waits, so ``dvc repro`` needs no change.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Sequence

import torch
import torch.distributed as dist

from dlpipe.runtime import init_from_env  # noqa: F401  (re-exported: the engine's API)


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


def launch(nproc_per_node: int, argv: Sequence[str] | None = None) -> bool:
    """Re-run this script under torchrun when more than one training process is asked for.

    Args:
        nproc_per_node: ``runtime.nproc_per_node`` (one per GPU on CUDA machines).
        argv: the script's arguments (default ``sys.argv[1:]``).
    Multi-node runs take ``DLPIPE_NNODES``, ``DLPIPE_NODE_RANK`` and ``DLPIPE_RDZV_ENDPOINT``
    ("host:port" of node 0) from the environment: they describe the machines, not the experiment,
    so they stay out of params (and out of DVC's cache key). See docs/ENGINE.md.

    Returns:
        True in the launching process after every worker finished (the caller returns: the work is
        done); False when the caller must do the work itself (one process, or a torchrun worker).
    Raises:
        SystemExit with torchrun's exit status when a worker failed.
    """
    nnodes = int(os.environ.get("DLPIPE_NNODES", "1"))
    if (nproc_per_node <= 1 and nnodes <= 1) or "TORCHELASTIC_RUN_ID" in os.environ:
        return False
    rdzv = os.environ.get("DLPIPE_RDZV_ENDPOINT") if nnodes > 1 else None
    if nnodes > 1 and not rdzv:
        raise SystemExit("DLPIPE_NNODES > 1 needs DLPIPE_RDZV_ENDPOINT=host:port (node 0's address)")
    cmd = ddp_launch_cmd(nproc_per_node, sys.argv[0], list(sys.argv[1:] if argv is None else argv), nnodes=nnodes,
                         node_rank=int(os.environ.get("DLPIPE_NODE_RANK", "0")), rdzv_endpoint=rdzv)
    rc = subprocess.call(cmd)
    if rc:
        raise SystemExit(f"{os.path.basename(sys.argv[0])}: torchrun ({nnodes} node(s) x {nproc_per_node} "
                         f"processes) failed with exit status {rc}")
    return True
