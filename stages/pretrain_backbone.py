"""Pretrain the Darknet backbone on MNIST digits with one-cycle.

Usage: python stages/pretrain_backbone.py --params params.yaml SRC MODEL --log-dir DIR --run-dir DIR --metrics METRICS

SRC is the output of ``index_images --format idx``; MODEL gets the weights (state_dict, DarknetConfig,
input normalisation); DIR gets history.tsv and curves.png; the run dir holds resume checkpoints.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.train.distributed import is_main, launch
from dlpipe.tasks.vision_backbone import PretrainParams, pretrain_backbone
from dlpipe.runtime import RuntimeParams
from dlpipe.vision.features import BackboneParams
from dlpipe.errors import run_stage


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("src", type=Path, help="MNIST split arrays (index_images output)")
    ap.add_argument("model", type=Path, help="backbone.pt to write")
    ap.add_argument("--log-dir", type=Path, required=True)
    ap.add_argument("--run-dir", type=Path, default=None, help="resume checkpoints (not a DVC output)")
    ap.add_argument("--metrics", type=Path, required=True)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    bb = params.load(BackboneParams, "vision.backbone", args.params)
    p = params.load(PretrainParams, "vision.pretrain_backbone", args.params)
    rt = params.load(RuntimeParams, "runtime", args.params)
    if launch(rt.nproc_per_node):        # > 1 process: re-run under torchrun, which did the work
        return
    metrics = pretrain_backbone(args.src, args.model, args.log_dir, args.run_dir, bb, p, rt)
    if is_main():
        write_json(args.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
