"""ULMFiT's forward + backward ensemble: the mean of both classifiers' probabilities on each
evaluation set (the evaluate stages' ``probs_<set>.npy``; no model is run again)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlpipe.core.errors import DataError


def ensemble(*, fwd: Path, bwd: Path) -> dict:
    """Accuracy of fwd, bwd and their mean per evaluation set found in both directories."""
    sets = sorted(f.name[len("probs_"):-len(".npy")] for f in Path(fwd).glob("probs_*.npy"))
    if not sets:
        raise DataError(f"{fwd}: no probs_<set>.npy files (run evaluate_classifier first)")
    out = {}
    for s in sets:
        pf, pb = np.load(fwd / f"probs_{s}.npy"), np.load(bwd / f"probs_{s}.npy")
        y_f, y_b = np.load(fwd / f"labels_{s}.npy"), np.load(bwd / f"labels_{s}.npy")
        if pf.shape != pb.shape or not np.array_equal(y_f, y_b):
            raise DataError(f"{fwd} and {bwd}: predictions on '{s}' are not for the same reviews "
                            f"(shapes {pf.shape} vs {pb.shape})")
        acc = lambda probs: float((probs.argmax(1) == y_f).mean())  # noqa: E731
        out[s] = {"fwd_accuracy": acc(pf), "bwd_accuracy": acc(pb), "ensemble_accuracy": acc((pf + pb) / 2),
                  "n": len(y_f)}
    return {"ensemble_accuracy": out[sets[0] if "test" not in out else "test"]["ensemble_accuracy"], **out}
