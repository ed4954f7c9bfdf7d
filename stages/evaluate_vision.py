"""Evaluate a vision classifier on the valid split: accuracy, confusion.png, predictions.png.

Usage:
  python stages/evaluate_vision.py --params params.yaml RAW INDEX_DIR MODEL OUT_DIR --title NAME --metrics M.json
      (RAW: image folder or .tgz as indexed; OUT_DIR gets confusion.png, predictions.png)
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.transfer.evaluate import evaluate


def main(argv=None):
    return stage_main(__doc__, evaluate, argv, params={"p": "vision.evaluate", "rt": "runtime"},
               args=[*(arg(n, type=Path) for n in ("raw", "index_dir", "model", "out_dir")),
                     arg("--title", required=True)])


if __name__ == "__main__":
    main()
