"""Relaunching a stage under ``torchrun``: with ``runtime.nproc_per_node > 1`` in params (or
``DLPIPE_NNODES > 1`` in the environment) a stage script re-runs itself on N processes and waits,
so ``dvc repro`` needs no change. Needs no torch import (a subprocess runs torchrun).
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Sequence


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
