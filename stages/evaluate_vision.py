"""Evaluate a vision classifier on the valid split, or gather the transfer-learning summary.

Usage:
  python stages/evaluate_vision.py evaluate --params params.yaml RAW INDEX_DIR MODEL OUT_DIR --title NAME
      (OUT_DIR gets metrics.json, confusion.png, predictions.png)
  python stages/evaluate_vision.py summary OUT_JSON --eval NAME=metrics.json ... --train NAME=metrics.json ...
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.tasks.vision_data import RuntimeParams
from dlpipe.tasks.vision_eval import EvaluateParams, evaluate, transfer_summary


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
    sub = ap.add_subparsers(dest="mode", required=True)
    ev = sub.add_parser("evaluate")
    ev.add_argument("raw", type=Path)
    ev.add_argument("index_dir", type=Path)
    ev.add_argument("model", type=Path)
    ev.add_argument("out_dir", type=Path)
    ev.add_argument("--title", required=True)
    ev.add_argument("--params", type=Path, default=Path("params.yaml"))
    sm = sub.add_parser("summary")
    sm.add_argument("out", type=Path)
    sm.add_argument("--eval", action="append", default=[], help="NAME=evaluate metrics.json")
    sm.add_argument("--train", action="append", default=[], help="NAME=training metrics.json")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    if a.mode == "summary":
        write_json(a.out, transfer_summary(_pairs(a.eval, "--eval"), _pairs(a.train, "--train")))
        return
    p = params.load(EvaluateParams, "vision.evaluate", a.params)
    rt = params.load(RuntimeParams, "runtime", a.params)
    write_json(a.out_dir / "metrics.json", evaluate(a.raw, a.index_dir, a.model, a.out_dir, p, rt, a.title))


if __name__ == "__main__":
    main()
