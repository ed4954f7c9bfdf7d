"""Run the frozen backbone over an indexed dataset and store the activations of a named layer.

Usage: python stages/precompute.py --params params.yaml --dataset NAME SRC INDEX_DIR MODEL OUT --metrics METRICS

Writes one feature store per split (OUT/train, OUT/valid, ...), rows in a seeded pre-shuffled order;
see dlpipe.io.arrays for the format. MODEL is ignored when vision.backbone.weights names torchvision
weights.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlpipe import params
from dlpipe.errors import DataError, run_stage
from dlpipe.io.atomic import write_json
from dlpipe.runtime import RuntimeParams
from dlpipe.tasks.vision_features import PrecomputeParams, precompute
from dlpipe.vision.features import BackboneParams


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--dataset", required=True, help="dataset name: selects vision.precompute.<NAME>")
    ap.add_argument("src", type=Path, help="raw image folder")
    ap.add_argument("index", type=Path, help="index_images output directory (index.csv)")
    ap.add_argument("model", type=Path, help="pretrained backbone.pt")
    ap.add_argument("out", type=Path, help="output directory: one store per split")
    ap.add_argument("--metrics", type=Path, required=True)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    bb = params.load(BackboneParams, "vision.backbone", args.params)
    p = params.load(PrecomputeParams, f"vision.precompute.{args.dataset}", args.params)
    rt = params.load(RuntimeParams, "runtime", args.params)
    try:
        metrics = precompute(args.src, args.index, args.model, args.out, bb, p, rt, args.dataset)
    except DataError as e:
        sys.exit(f"precompute {args.dataset}: {e}")
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
