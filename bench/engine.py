"""Training-engine overhead: runs bench/bench_engine.py (the engine engineer's) and tabulates it.

bench_engine times the Learner (events, progress bar, recording) against a bare loop doing the
same math; this adapter runs it in a subprocess with --runs N and turns its JSON into a section.
"""
from __future__ import annotations

import json
import subprocess

from bench.common import PROJECT_PY, RAW, ROOT, BenchError, fmt_stat, summarize, target


def run(peer_py, runs: int, quick: bool) -> dict:
    out = RAW / "engine_raw.json"
    args = ["--runs", str(max(runs, 1)), "--epochs", "1" if quick else "2", "--out", str(out)]
    out.unlink(missing_ok=True)
    log = RAW / "logs" / "engine.log"
    with open(log, "w") as fh:  # bench_engine prints a text summary, not a JSON line: read its --out file
        rc = subprocess.run([PROJECT_PY, "-m", "bench.bench_engine", *args], cwd=ROOT, stdout=fh,
                            stderr=subprocess.STDOUT).returncode
    if rc != 0 or not out.is_file():
        raise BenchError(f"bench/bench_engine.py exited {rc} without writing {out} (log {log})")
    res = json.loads(out.read_text())
    st = {k: summarize(res[k]["runs"]) for k in ("learner", "bare_loop")}
    ratio = st["learner"]["median"] / st["bare_loop"]["median"]
    return {"title": "Training engine: Learner vs a bare loop", "measured": {**st, "raw": res},
            "notes": [res["task"], "Ratio = Learner samples/s ÷ bare-loop samples/s (1.00 = no overhead); "
                      "the runs alternate learner, bare, ... (bench/bench_engine.py)."],
            "tables": [{"caption": "samples/s", "headers": ["loop", "samples/s", "vs bare loop"],
                        "rows": [["dlpipe Learner", fmt_stat(st["learner"]), f"{ratio:.2f}×"],
                                 ["bare loop", fmt_stat(st["bare_loop"]), "1.00×"]]}],
            "targets": [target("Learner / bare loop samples/s", ratio, ">=", 0.9)]}
