"""Train a linear/MLP head on precomputed features (no backbone forward), one-cycle.

Usage: python stages/train_head.py --params params.yaml FEATURES BACKBONE HEAD_OUT MODEL_OUT
           --labels full|low --labeled labeled.npy --metrics reports/vision/train_head/full/metrics.json
           --log-dir reports/vision/train_head/full --run-dir data/runs/vision/train_head-full

FEATURES holds the feature stores train/ and valid/ (precompute). HEAD_OUT gets the head alone
(fine-tuning loads it); MODEL_OUT the backbone cut + head, for evaluation. ``--labels low`` trains
on the train rows listed in ``--labeled`` only.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.train.distributed import is_main, launch
from dlpipe.runtime import RuntimeParams
from dlpipe.tasks.vision_heads import TrainHeadParams, train_head
from dlpipe.vision.heads import HeadParams
from dlpipe.errors import run_stage


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("features", type=Path, help="directory with train/ and valid/ feature stores")
    ap.add_argument("backbone", type=Path, help="backbone.pt the features were computed with")
    ap.add_argument("head_out", type=Path)
    ap.add_argument("model_out", type=Path)
    ap.add_argument("--labels", choices=("full", "low"), required=True)
    ap.add_argument("--labeled", type=Path, required=True, help="index rows kept in the low-label run")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--log-dir", type=Path, required=True, help="history.tsv + curves.png")
    ap.add_argument("--run-dir", type=Path, default=None, help="resume checkpoints (not a DVC output)")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    p = params.load(TrainHeadParams, "vision.train_head", a.params)
    hp = params.load(HeadParams, "vision.head", a.params)
    rt = params.load(RuntimeParams, "runtime", a.params)
    labeled = a.labeled if a.labels == "low" else None
    if launch(rt.nproc_per_node):        # > 1 process: re-run under torchrun, which did the work
        return
    metrics = train_head(a.features, a.backbone, a.head_out, a.model_out, a.log_dir, a.run_dir, labeled, p, hp, rt)
    if is_main():
        write_json(a.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
