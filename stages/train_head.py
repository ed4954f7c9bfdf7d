"""Train a linear/MLP head on precomputed features (no backbone forward), one-cycle.

Usage: python stages/train_head.py --params params.yaml FEATURES BACKBONE HEAD_OUT MODEL_OUT
           --labels full|low --labeled labeled.npy --metrics reports/vision/train_head/full/metrics.json
           --log-dir reports/vision/train_head/full --run-dir data/runs/vision/train_head-full

FEATURES holds the feature stores train/ and valid/ (precompute). HEAD_OUT gets the head alone
(fine-tuning loads it); MODEL_OUT the backbone cut + head, for evaluation. ``--labels low`` trains
on the train rows listed in ``--labeled`` only.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.transfer.heads import train_head


def main(argv=None):
    return stage_main(__doc__, train_head, argv, ddp=True, run_dirs=True,
               params={"p": "vision.train_head", "hp": "vision.head", "rt": "runtime"},
               args=[arg("features", type=Path, help="directory with train/ and valid/ feature stores"),
                     arg("backbone", type=Path, help="backbone.pt the features were computed with"),
                     arg("head_out", type=Path), arg("model_out", type=Path),
                     arg("--labels", choices=("full", "low"), required=True),
                     arg("--labeled", type=Path, help="index rows kept in the low-label run")])


if __name__ == "__main__":
    main()
