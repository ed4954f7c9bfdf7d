"""Gather the vision transfer-learning demo into one metrics file: accuracies, epoch times, feature store.

Usage: python stages/transfer_summary.py OUT_JSON --eval NAME=metrics.json ... --train NAME=metrics.json ...
           [--precompute reports/vision/precompute/<dataset>/metrics.json]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlpipe.errors import DataError, run_stage
from dlpipe.io.atomic import write_json
from dlpipe.tasks.vision_summary import transfer_summary


def _pairs(items: list[str], flag: str) -> dict[str, Path]:
    out = {}
    for s in items:
        name, sep, path = s.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"{flag}: expected NAME=PATH, got {s!r}")
        out[name] = Path(path)
    return out


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--eval", action="append", default=[], help="NAME=evaluate metrics.json")
    ap.add_argument("--train", action="append", default=[], help="NAME=training metrics.json")
    ap.add_argument("--precompute", type=Path, default=None, help="precompute metrics.json")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    try:
        m = transfer_summary(_pairs(a.eval, "--eval"), _pairs(a.train, "--train"), a.precompute)
    except DataError as e:
        sys.exit(f"transfer_summary: {e}")
    write_json(a.out, m)


if __name__ == "__main__":
    run_stage(main)
