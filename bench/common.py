"""Shared bench helpers: repeat-and-median stats, process-tree RSS, worker subprocesses, reports.

Every measurement runs as a subprocess (dlpipe in the project venv, peers in bench/.peers/venv)
that prints ONE JSON object as its last stdout line; the runner adds the peak RSS of the
subprocess tree (parent + pool workers, polled with psutil) and its wall time.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
RAW = RESULTS / "raw"          # scratch: corpora, token dumps, logs (git-ignored)
PROJECT_PY = sys.executable    # the runner runs in the project venv
_POLL_S = 0.02
LOADS: list[float] = []        # 1-min load average at the start of each worker (the runner reports it)


class BenchError(RuntimeError):
    """A benchmark could not run (a peer not installable, a worker failed); the message says why."""


# ---- statistics -------------------------------------------------------------------------------

def summarize(values: Sequence[float]) -> dict:
    """Median, min, max and count of repeated measurements (the raw runs are kept too)."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("summarize: no measurements")
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "n": len(vals), "runs": vals}


def ratio(a: dict | float | None, b: dict | float | None) -> float | None:
    """Ratio of two medians (or plain numbers); None when either side is missing or zero."""
    a = a["median"] if isinstance(a, dict) else a
    b = b["median"] if isinstance(b, dict) else b
    if a is None or not b:
        return None
    return a / b


def human(x: float | None, digits: int = 3) -> str:
    """1234567 -> '1.23M', 51234 -> '51.2k', 0.0123 -> '0.0123'."""
    if x is None:
        return "–"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.{digits}g}{suffix}"
    return f"{x:.{digits}g}"


def fmt_stat(s: dict | None, fmt=human) -> str:
    """'51.2k (49.8k–52.0k)': median with the min–max range (just the median for one run)."""
    if s is None:
        return "–"
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt(s["median"])
    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def fmt_ratio(r: float | None) -> str:
    return "–" if r is None else f"{r:.2f}×"


def md_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table; cells are str()-ed and '|' escaped."""
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"md_table: row has {len(row)} cells, expected {len(headers)}: {row!r}")
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def target(name: str, value: float | None, op: str, threshold: float) -> dict:
    """A target check: ``value op threshold`` with op '>=' or '<='; met is None without a value."""
    if op not in (">=", "<="):
        raise ValueError(f"target: op must be '>=' or '<=', got {op!r}")
    met = None if value is None else (value >= threshold if op == ">=" else value <= threshold)
    return {"name": name, "value": value, "op": op, "threshold": threshold, "met": met}


# ---- processes --------------------------------------------------------------------------------

def tree_mem(proc: psutil.Process, pss: bool = False) -> int:
    """RSS (or PSS: shared pages split between sharers) of ``proc`` plus all its descendants, bytes.

    Summed RSS counts pages a forked worker shares with its parent twice; PSS does not, so both
    are reported (fastai forks its workers, dlpipe spawns them).
    """
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_full_info().pss if pss else p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return total


def run_worker(cmd: Sequence[str], log: Path, timeout: float = 1800, env: dict | None = None) -> dict:
    """Run a measurement subprocess; return its JSON result + ``peak_rss``/``peak_pss`` (tree) + ``wall_s``.

    The worker's stderr (progress bars, warnings) goes to ``log``; a non-zero exit or a missing
    JSON line raises BenchError quoting the log's tail.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    LOADS.append(os.getloadavg()[0])
    start, peak = time.perf_counter(), 0
    with open(log, "w") as err:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=err, cwd=ROOT,
                                env={**os.environ, **(env or {})}, text=True)
        ps, polls, peak_pss = psutil.Process(proc.pid), 0, 0
        while proc.poll() is None:
            peak = max(peak, tree_mem(ps))
            if polls % 5 == 0:  # PSS reads smaps_rollup: slower, so every 5th poll (0.1 s)
                peak_pss = max(peak_pss, tree_mem(ps, pss=True))
            polls += 1
            if time.perf_counter() - start > timeout:
                proc.kill()
                raise BenchError(f"{' '.join(cmd)}: timed out after {timeout:.0f} s (log: {log})")
            time.sleep(_POLL_S)
        out = proc.stdout.read()
    wall = time.perf_counter() - start
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-15:])
        raise BenchError(f"{' '.join(cmd)}: exited {proc.returncode} without a result\n--- {log} (tail):\n{tail}")
    result = json.loads(lines[-1])
    result.update(peak_rss=peak, peak_pss=peak_pss, wall_s=wall)
    return result


# ---- machine + reports ------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _blas() -> str:
    import numpy as np
    import torch
    cfg = torch.__config__.show()
    mkl = next((ln.strip(" -") for ln in cfg.splitlines() if "Math Kernel Library" in ln), "")
    cap = next((ln.split(":", 1)[1].strip() for ln in cfg.splitlines() if "CPU capability" in ln), "?")
    torch_blas = f"{mkl.split('-Product')[0] or 'BLAS: see torch.__config__.show()'} ({cap})"
    try:
        np_cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        np_blas = f"{np_cfg.get('name')} {np_cfg.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        np_blas = "?"
    return f"torch: {torch_blas}; numpy: {np_blas}"


def machine() -> dict:
    """CPU model, cores, RAM, library versions and BLAS of this machine."""
    import numpy as np
    import torch
    return {"cpu": _cpu_model(), "cores_logical": psutil.cpu_count(), "cores_physical": psutil.cpu_count(False),
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "blas": _blas(),
            "torch_threads_default": torch.get_num_threads(), "kernel": platform.release(),
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}


def write_result(name: str, payload: dict) -> Path:
    """Write bench/results/<name>.json atomically (sorted keys: reruns diff cleanly)."""
    from dlpipe.core.atomic import write_json
    path = RESULTS / f"{name}.json"
    write_json(path, payload)
    return path


def check_mark(met: bool | None) -> str:
    return {True: "✅ met", False: "❌ not met", None: "– n/a"}[met]


def render_result(res: dict) -> str:
    """One benchmark's section of RESULTS.md: title, notes, its table, its targets."""
    parts = [f"## {res['title']}", ""]
    parts += [f"- {n}" for n in res.get("notes", [])] + [""]
    for tbl in res.get("tables", []):
        if tbl.get("caption"):
            parts += [f"**{tbl['caption']}**", ""]
        parts += [md_table(tbl["headers"], tbl["rows"]), ""]
    if res.get("targets"):
        rows = [[t["name"], "–" if t["value"] is None else f"{t['value']:.3g}", f"{t['op']} {t['threshold']:g}",
                 check_mark(t["met"])] for t in res["targets"]]
        parts += [md_table(["target", "measured", "goal", "status"], rows), ""]
    return "\n".join(parts)


def render_markdown(results: list[dict], mach: dict) -> str:
    """The whole RESULTS.md: machine description, then every benchmark's section."""
    head = ["# dlpipe benchmarks", "",
            "Generated by `.venv/bin/python -m bench.run`; do not edit by hand. Medians of the runs with "
            "(min–max); ratios are of medians measured in the same run, peers and dlpipe interleaved.", "",
            "## Machine", "",
            md_table(["key", "value"], [[k, v] for k, v in mach.items()]), ""]
    return "\n".join(head + [render_result(r) for r in results])
