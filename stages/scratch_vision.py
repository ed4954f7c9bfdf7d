"""Train the same Darknet + head from random init on the same images and epochs: the baseline.

Usage: python stages/scratch_vision.py --params params.yaml --dataset NAME RAW INDEX_DIR MODEL_OUT
           --labels full|low --labeled labeled.npy --metrics M.json --log-dir DIR --run-dir DIR

The cut layer and image size are the precompute stage's (``vision.precompute.<NAME>.cut``).
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.transfer.finetune import scratch


def main(argv=None):
    return stage_main(__doc__, scratch, argv, ddp=True, run_dirs=True,
               params={"p": "vision.finetune", "head_p": "vision.head", "bb": "vision.backbone",
                       "cut_p": "vision.precompute.{dataset}.cut", "rt": "runtime"},
               args=[arg("--dataset", required=True, help="selects vision.precompute.<NAME>.cut"),
                     arg("raw", type=Path, help="images (as indexed)"), arg("index_dir", type=Path),
                     arg("model_out", type=Path), arg("--labels", choices=("full", "low"), required=True),
                     arg("--labeled", type=Path, help="index rows kept in the low-label run")])


if __name__ == "__main__":
    main()
