"""The transfer-learning summary (stage ``transfer_summary``), from other stages' metrics.

Reads JSON only: no torch import, so the stage starts in a fraction of a second.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Sequence, Union

from dlpipe.core.errors import DataError

Pairs = Union[Mapping[str, Path], Sequence[tuple[str, Path]]]
PRECOMPUTE_KEYS = ("rows", "images_per_s", "raw_bytes", "bytes_on_disk", "compression_ratio", "seconds")


def _read_metrics(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: metrics file not found: run the stage that writes it") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


def _need(m: dict, key: str, path: Path):
    if key not in m:
        raise DataError(f"{path}: missing key '{key}' (expected one of the training/evaluation metrics)")
    return m[key]


def transfer_summary(*, evals: Pairs, trains: Pairs, precompute: Path | None = None) -> dict:
    """One metrics dict: accuracy of each variant, training epoch times, and the feature store's numbers.

    Args:
        evals: variant name (``head_full``, ``finetune_low``...) -> its evaluate metrics.json (or such pairs).
        trains: variant name -> its training metrics.json (with ``epoch_seconds`` and ``n_train``).
        precompute: the precompute stage's metrics.json (its ``total``: throughput, bytes, compression).
    """
    evals, trains = dict(evals), dict(trains)
    acc = {name: _need(_read_metrics(p), "accuracy", p) for name, p in sorted(evals.items())}
    tm = {name: (_read_metrics(p), p) for name, p in sorted(trains.items())}
    secs = {name: _need(m, "epoch_seconds", p) for name, (m, p) in tm.items()}
    out = {"accuracy": acc, "epoch_seconds": secs, "n_train": {name: _need(m, "n_train", p) for name, (m, p) in tm.items()}}
    head, fine = secs.get("head_full"), secs.get("finetune_full")
    if head and fine and not math.isnan(head) and head > 0:
        out["finetune_over_head_epoch_time"] = round(fine / head, 1)   # how much faster precomputed features train
    for labels in ("full", "low"):
        f, s = acc.get(f"finetune_{labels}"), acc.get(f"scratch_{labels}")
        if f is not None and s is not None:
            out[f"pretrained_minus_scratch_{labels}"] = round(f - s, 5)
        h = acc.get(f"head_{labels}")
        if h is not None and s is not None:
            out[f"head_minus_scratch_{labels}"] = round(h - s, 5)
    if precompute is not None:
        total = _need(_read_metrics(precompute), "total", precompute)
        out["precompute"] = {k: total[k] for k in PRECOMPUTE_KEYS if k in total}
    return out
