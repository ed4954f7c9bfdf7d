"""Atomic checkpoints (for resume) and final model artifacts: dicts of state_dicts, never pickled modules.

A training checkpoint is one file, ``<run_dir>/checkpoint.pt``, always holding the latest state:
model, optimizer, GradScaler, RNG states, position (phase, epoch, iter, step), finished phases,
callback states, fingerprint and config. It is written to a temp sibling, fsynced and renamed.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from dlpipe.core.atomic import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointMismatch(ValueError):
    """Saved tensors do not fit the model: the message lists every mismatched name and shape."""


def get_rng_state() -> dict:
    """The RNG states of python, numpy, torch CPU and (if present) every CUDA device."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Atomically write ``state`` (a dict of plain values and state_dicts) with torch.save."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike) -> Optional[dict]:
    """Read a checkpoint written by :func:`save_checkpoint`; None if the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    # weights_only=False: RNG states hold python/numpy objects; the file is our own, never downloaded.
    return torch.load(path, map_location="cpu", weights_only=False)


def mismatches(model: nn.Module, state_dict: dict) -> list[str]:
    """Lines describing tensors missing, unexpected or of the wrong shape in ``state_dict``."""
    own = model.state_dict()
    lines = [f"  missing in checkpoint: {k} {tuple(v.shape)}" for k, v in own.items() if k not in state_dict]
    lines += [f"  unexpected in checkpoint: {k} {tuple(v.shape)}" for k, v in state_dict.items() if k not in own]
    lines += [f"  shape mismatch: {k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
              for k, v in state_dict.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    return lines


def load_state_strict(model: nn.Module, state_dict: dict, source: str) -> None:
    """``model.load_state_dict`` with one clear error listing every mismatched tensor."""
    bad = mismatches(model, state_dict)
    if bad:
        raise CheckpointMismatch(f"{source}: checkpoint does not match the model ({len(bad)} tensor(s)):\n"
                                 + "\n".join(bad))
    model.load_state_dict(state_dict)


def save_model(path: str | os.PathLike, model: nn.Module, config: dict, extra: Optional[dict] = None) -> None:
    """Write a final model artifact: ``{"model": state_dict, "config": config, "extra": extra}``, atomically.

    Args:
        path: destination file (e.g. ``data/models/imdb/lm.pt``).
        model: the model (unwrapped from DDP if needed).
        config: the model's config dataclass as a dict (``dataclasses.asdict``), to rebuild it.
        extra: anything small and picklable (vocab size, metrics, ...).
    """
    model = getattr(model, "module", model)
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"model": sd, "config": dict(config), "extra": dict(extra or {})}, tmp)


def load_model(path: str | os.PathLike, model: Optional[nn.Module] = None) -> dict[str, Any]:
    """Read an artifact from :func:`save_model`; load its weights into ``model`` if given.

    Returns the dict ``{"model", "config", "extra"}`` (so a caller can build the model from
    ``config`` first, then call ``load_model(path, model)``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model file not found")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "model" not in blob:
        raise ValueError(f"{path}: not a dlpipe model file (expected keys model/config/extra)")
    if model is not None:
        load_state_strict(model, blob["model"], str(path))
    return blob
