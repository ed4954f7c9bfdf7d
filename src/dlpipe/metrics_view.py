"""`dlpipe metrics`: every stage's metrics, grouped by task, one file per block, readable in a terminal.

``dvc metrics show`` prints one table whose columns are the union of every file's keys (hundreds
here), so each row is thousands of characters wide. This reads the same data (``dvc metrics show
--json``: the files dvc.yaml declares, as DVC sees them) and prints each file's flattened keys::

    $ dlpipe metrics --task imdb
    task imdb
      reports/imdb/ensemble/metrics.json
        bwd_accuracy 0.635  ensemble_accuracy 0.63  fwd_accuracy 0.61  n_valid 200
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dlpipe.core.errors import DataError


def flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dicts → sorted ``(dotted.key, value)`` pairs; lists and scalars are leaves."""
    out: list[tuple[str, object]] = []
    for k in sorted(d, key=str):
        key = f"{prefix}.{k}" if prefix else str(k)
        out += flatten(d[k], key) if isinstance(d[k], dict) else [(key, d[k])]
    return out


def fmt(v: object) -> str:
    """Floats to 4 significant digits (what differs between runs), everything else as JSON."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v, ensure_ascii=False)


def task_of(path: str) -> str:
    """``reports/<task>/...`` → task; files elsewhere are grouped under their top directory."""
    parts = Path(path).parts
    return parts[1] if len(parts) > 2 and parts[0] == "reports" else parts[0]


def pack(items: list[str], width: int, indent: str, sep: str = "  ") -> list[str]:
    """Items joined by ``sep`` into lines of at most ``width`` characters; an item is never split."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(sep) + len(item) <= width:
            lines[-1] += sep + item
        else:
            lines.append(indent + item)
    return lines


def render(files: dict[str, dict], task: str | None = None, width: int = 100) -> str:
    """``{path: metrics dict or {"error": ...}}`` → the text ``dlpipe metrics`` prints."""
    lines: list[str] = []
    for t in sorted({task_of(p) for p in files}):
        if task is not None and t != task:
            continue
        lines.append(f"task {t}")
        for path in sorted(p for p in files if task_of(p) == t):
            lines.append(f"  {path}")
            m = files[path]
            items = [f"missing or unreadable: {m['error']}"] if "error" in m else \
                [f"{k} {fmt(v)}" for k, v in flatten(m)] or ["(empty)"]
            lines += pack(items, width, indent="    ")
    if task is not None and not lines:
        raise DataError(f"no metrics for task {task!r} (tasks with metrics: "
                        f"{', '.join(sorted({task_of(p) for p in files})) or 'none'})")
    return "\n".join(lines)


def read_dvc_metrics(root: str | Path = ".") -> dict[str, dict]:
    """``{path: metrics}`` of the workspace, from ``dvc metrics show --json`` run in ``root``."""
    dvc = Path(sys.executable).parent / "dvc"
    proc = subprocess.run([str(dvc) if dvc.exists() else "dvc", "metrics", "show", "--json"], cwd=root,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise DataError(f"{Path(root).resolve()}: `dvc metrics show` failed: {proc.stderr.strip()[-500:]}")
    doc = json.loads(proc.stdout or "{}")
    files = next(iter(doc.values()), {}).get("data", {}) if doc else {}
    if not files:    # DVC itself says nothing, even outside a repository
        raise DataError(f"{Path(root).resolve()}: no metrics files (not a DVC repository, or its dvc.yaml "
                        "declares no metrics)")
    return {p: v["data"] if "data" in v else {"error": _error_text(v.get("error"))} for p, v in files.items()}


def _error_text(err: object) -> str:
    """DVC reports ``{"type": ..., "msg": ...}`` for a file it could not read."""
    return str(err.get("msg") or err.get("type")) if isinstance(err, dict) else str(err or "unreadable")
