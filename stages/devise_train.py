"""DeViSE: train a head on image features to regress each image's class word vector (cosine loss).

Usage: python stages/devise_train.py --params params.yaml FEATURES VECTORS_DIR HEAD_OUT --log-dir DIR --run-dir DIR --metrics M.json
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.devise.train import train


def main(argv=None):
    return stage_main(__doc__, train, argv, ddp=True, run_dirs=True, params={"p": "vision.devise.train", "rt": "runtime"},
               args=[*(arg(n, type=Path) for n in ("features", "vectors", "head_out"))])


if __name__ == "__main__":
    main()
