"""Run the benchmarks and write bench/results/<name>.json + bench/results/RESULTS.md.

Usage: .venv/bin/python -m bench.run [--only NAME ...] [--quick] [--runs N]

Installs the peers into bench/.peers/venv on first use. Each benchmark interleaves dlpipe and its
peer run by run; --quick makes 1 run of each on the smallest inputs (a smoke check, not numbers
to quote). RESULTS.md is rebuilt from every results JSON present, so --only refreshes one section.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback

from bench.common import LOADS, RESULTS, machine, render_markdown, write_result

# Run order: the DVC benchmark last (it builds a temporary copy of the repo and runs the DAG).
BENCHES = ("tokenize", "numericalize", "lm_train", "feature_store", "engine", "cifar_train", "seq2seq_train", "unet_train",
           "sr_upsample", "style_lbfgs", "dvc_overhead")
NEEDS_PEERS = {"tokenize", "numericalize", "lm_train", "cifar_train"}


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", choices=BENCHES, help="run only this benchmark (repeatable)")
    ap.add_argument("--quick", action="store_true", help="1 run each on the smallest inputs (smoke check)")
    ap.add_argument("--runs", type=int, default=3, help="repeats per measurement (default 3; medians reported)")
    return ap.parse_args(argv)


def run_one(name: str, peer_py, runs: int, quick: bool) -> dict:
    """Run one benchmark module's ``run``; a failure becomes an error section, not a crash."""
    t0 = time.perf_counter()
    LOADS.clear()
    try:
        mod = importlib.import_module(f"bench.{name}")
        res = mod.run(peer_py, runs, quick)
    except Exception as e:  # report and go on: one broken piece must not hide the others' numbers
        traceback.print_exc()
        res = {"title": name, "error": f"{type(e).__name__}: {e}",
               "notes": [f"**failed**: `{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}`"]}
    res.update(name=name, runs=runs, quick=quick, elapsed_s=round(time.perf_counter() - t0, 1),
               date=time.strftime("%Y-%m-%d %H:%M:%S"))
    if LOADS:  # a busy machine slows both sides alike, but widens the ranges: say how busy it was
        res.setdefault("notes", []).append(
            f"1-min load average when each measurement started: {min(LOADS):.1f}–{max(LOADS):.1f} "
            f"on {os.cpu_count()} cores; {res['elapsed_s']:.0f} s for this section.")
    write_result(name, res)
    return res


def rebuild_markdown() -> None:
    """RESULTS.md from machine.json + every <bench>.json present, in run order."""
    from dlpipe.core.atomic import write_text
    mach = json.loads((RESULTS / "machine.json").read_text())
    results = [json.loads((RESULTS / f"{n}.json").read_text()) for n in BENCHES if (RESULTS / f"{n}.json").is_file()]
    results = [r for r in results if "title" in r]  # skip files a benchmark wrote standalone
    write_text(RESULTS / "RESULTS.md", render_markdown(results, mach))


def main(argv=None) -> int:
    args = parse(argv)
    runs = 1 if args.quick else args.runs
    names = [n for n in BENCHES if not args.only or n in args.only]
    peer_py = None
    if NEEDS_PEERS & set(names):
        from bench.peer_env import ensure_peers, peer_versions
        peer_py = ensure_peers()
    mach = machine()
    if peer_py:
        mach["peers"] = peer_versions()
    write_result("machine", mach)
    failed = []
    for name in names:
        print(f"bench: {name} ({runs} run(s){', quick' if args.quick else ''})", flush=True)
        res = run_one(name, peer_py, runs, args.quick)
        print(f"bench: {name} done in {res['elapsed_s']} s{' — FAILED: ' + res['error'] if 'error' in res else ''}",
              flush=True)
        failed += [name] if "error" in res else []
    rebuild_markdown()
    print(f"bench: wrote {RESULTS / 'RESULTS.md'}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
