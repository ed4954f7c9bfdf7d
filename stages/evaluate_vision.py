"""Evaluate a vision classifier on the valid split: accuracy, confusion.png, predictions.png.

Usage:
  python stages/evaluate_vision.py --params params.yaml RAW INDEX_DIR MODEL OUT_DIR --title NAME
      (RAW: image folder or .tgz as indexed; OUT_DIR gets metrics.json, confusion.png, predictions.png)
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.runtime import RuntimeParams
from dlpipe.tasks.vision_eval import EvaluateParams, evaluate
from dlpipe.errors import run_stage


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw", type=Path)
    ap.add_argument("index_dir", type=Path)
    ap.add_argument("model", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--title", required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    p = params.load(EvaluateParams, "vision.evaluate", a.params)
    rt = params.load(RuntimeParams, "runtime", a.params)
    write_json(a.out_dir / "metrics.json", evaluate(a.raw, a.index_dir, a.model, a.out_dir, p, rt, a.title))


if __name__ == "__main__":
    run_stage(main)
