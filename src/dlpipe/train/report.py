"""Training reports: ``history.tsv`` (one row per epoch, for ``dvc plots``) and ``curves.png``."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from dlpipe.core.atomic import atomic_path, write_text


def _cell(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def write_history(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    """Atomically (re)write the whole TSV: a header plus one row per epoch, columns in a fixed order."""
    lines = ["\t".join(columns)] + ["\t".join(_cell(r.get(c, math.nan)) for c in columns) for r in rows]
    write_text(path, "\n".join(lines) + "\n")


def write_curves(path: Path, rows: Sequence[dict], steps: Sequence[tuple], metric_names: Sequence[str]) -> None:
    """Three panels against the global step: train/valid loss per epoch, metrics per epoch, lr per step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    x = [r["step"] for r in rows]
    axes[0].plot(x, [r["train_loss"] for r in rows], "o-", label="train")
    axes[0].plot(x, [r["valid_loss"] for r in rows], "o-", label="valid")
    axes[0].set(title="loss per epoch", xlabel="step")
    axes[0].legend()
    for name in metric_names:
        axes[1].plot(x, [r[name] for r in rows], "o-", label=name)
    axes[1].set(title="metrics per epoch", xlabel="step")
    if metric_names:
        axes[1].legend()
    axes[2].plot([s[0] for s in steps], [s[2] for s in steps])
    axes[2].set(title="lr (last group) per step", xlabel="step", yscale="log" if steps else "linear")
    for b in _phase_starts(rows):
        for ax in axes:
            ax.axvline(b, color="grey", lw=0.5, ls=":")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def _phase_starts(rows: Sequence[dict]) -> list[int]:
    """Steps where a new phase begins (dotted lines), from the previous phase's last row."""
    return [rows[i - 1]["step"] for i in range(1, len(rows)) if rows[i]["phase"] != rows[i - 1]["phase"]]
