"""Index one image dataset: verify every image decodes, make a seeded split and a low-label subset.

Usage: python stages/index_images.py --params params.yaml --format folder|idx SRC OUT --metrics METRICS

  folder: SRC is an ImageNet-style tree (<split>/<class>/*.jpg or <class>/*.jpg);
          writes OUT/index.csv (path,label,split) and OUT/labeled.npy (index rows of the labeled subset).
  idx:    SRC holds the MNIST t10k IDX files; writes OUT/{train,valid}_{images,labels}.npy.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlpipe import params
from dlpipe.errors import DataError, run_stage
from dlpipe.io.atomic import write_json
from dlpipe.tasks.vision_data import IndexParams, index_images


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--format", choices=("folder", "idx"), required=True)
    ap.add_argument("src", type=Path, help="raw dataset directory")
    ap.add_argument("out", type=Path, help="output directory")
    ap.add_argument("--metrics", type=Path, required=True)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    p = params.load(IndexParams, "vision.index", args.params)
    try:
        metrics = index_images(args.src, args.out, p, args.format)
    except DataError as e:
        sys.exit(f"index_images: {e}")
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
