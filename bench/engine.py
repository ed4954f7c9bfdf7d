"""Training-engine overhead: runs bench/bench_engine.py (the engine engineer's) and tabulates it.

bench_engine times the Learner (events, progress bar, recording) against a bare loop doing the
same math; this adapter runs it in a subprocess with --runs N and turns its JSON into a section.
"""
from __future__ import annotations

import json

from bench.common import PROJECT_PY, RAW, fmt_stat, run_worker, summarize, target


def run(peer_py, runs: int, quick: bool) -> dict:
    out = RAW / "engine_raw.json"
    args = ["--runs", str(max(runs, 1)), "--epochs", "1" if quick else "2", "--out", str(out)]
    run_worker([PROJECT_PY, "-m", "bench.bench_engine", *args], RAW / "logs" / "engine.log")
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
