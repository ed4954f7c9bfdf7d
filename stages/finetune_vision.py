"""Fine-tune backbone + head on images (gradual unfreezing, discriminative LRs), or train the same
network from scratch as the baseline.

Usage:
  python stages/finetune_vision.py finetune --params params.yaml RAW INDEX_DIR MODEL_OUT --dataset NAME
      --backbone backbone.pt --head head.pt --labels full|low --labeled labeled.npy
      --metrics M.json --log-dir DIR --run-dir DIR
  python stages/finetune_vision.py scratch --params params.yaml RAW INDEX_DIR MODEL_OUT --dataset NAME
      --labels full|low --labeled labeled.npy --metrics M.json --log-dir DIR --run-dir DIR

RAW is the image folder, INDEX_DIR holds index.csv (path,label,split). Phases are named ("head",
"all"; "scratch") so an interrupted run resumes exactly.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.train.distributed import is_main, launch
from dlpipe.runtime import RuntimeParams
from dlpipe.tasks.vision_features import PrecomputeParams
from dlpipe.tasks.vision_heads import FinetuneParams, finetune, scratch
from dlpipe.vision.heads import HeadParams
from dlpipe.vision.features import BackboneParams
from dlpipe.errors import run_stage


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("finetune", "scratch"))
    ap.add_argument("raw", type=Path, help="image folder (as indexed)")
    ap.add_argument("index_dir", type=Path, help="directory with index.csv")
    ap.add_argument("model_out", type=Path)
    ap.add_argument("--backbone", type=Path, help="pretrained backbone.pt (finetune)")
    ap.add_argument("--head", type=Path, help="head.pt from train_head (finetune)")
    ap.add_argument("--dataset", required=True, help="reads vision.precompute.<dataset> (feature layer, size)")
    ap.add_argument("--labels", choices=("full", "low"), required=True)
    ap.add_argument("--labeled", type=Path, required=True, help="index rows kept in the low-label run")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--log-dir", type=Path, required=True, help="history.tsv + curves.png")
    ap.add_argument("--run-dir", type=Path, default=None, help="resume checkpoints (not a DVC output)")
    a = ap.parse_args(argv)
    if a.mode == "finetune" and (a.backbone is None or a.head is None):
        ap.error("finetune needs --backbone and --head")
    return a


def main(argv=None) -> None:
    a = parse(argv)
    p = params.load(FinetuneParams, "vision.finetune", a.params)
    pre = params.load(PrecomputeParams, f"vision.precompute.{a.dataset}", a.params)
    rt = params.load(RuntimeParams, "runtime", a.params)
    labeled = a.labeled if a.labels == "low" else None
    if launch(rt.nproc_per_node):        # > 1 process: re-run under torchrun, which did the work
        return
    if a.mode == "finetune":
        m = finetune(a.raw, a.index_dir, a.backbone, a.head, a.model_out, a.log_dir, a.run_dir, labeled, p, pre, rt)
    else:
        head_p = params.load(HeadParams, "vision.head", a.params)
        bb = params.load(BackboneParams, "vision.backbone", a.params)
        m = scratch(a.raw, a.index_dir, a.model_out, a.log_dir, a.run_dir, labeled, p, head_p, bb, pre, rt)
    if is_main():
        write_json(a.metrics, m)


if __name__ == "__main__":
    run_stage(main)
