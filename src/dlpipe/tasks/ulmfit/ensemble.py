"""ULMFiT's forward + backward ensemble: the mean of both classifiers' validation probabilities
(the evaluate stages' ``probs.npy``; no model is run again)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlpipe.core.errors import DataError


def ensemble(*, fwd: Path, bwd: Path) -> dict:
    """Average forward and backward probabilities (ULMFiT's fwd+bwd ensemble)."""
    pf, pb = np.load(fwd / "probs.npy"), np.load(bwd / "probs.npy")
    y_f, y_b = np.load(fwd / "labels.npy"), np.load(bwd / "labels.npy")
    if pf.shape != pb.shape or not np.array_equal(y_f, y_b):
        raise DataError(f"{fwd} and {bwd}: predictions are not for the same validation set "
                        f"(shapes {pf.shape} vs {pb.shape})")
    acc = lambda probs: float((probs.argmax(1) == y_f).mean())  # noqa: E731
    return {"fwd_accuracy": acc(pf), "bwd_accuracy": acc(pb), "ensemble_accuracy": acc((pf + pb) / 2),
            "n_valid": len(y_f)}
