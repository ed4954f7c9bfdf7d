"""Gather the label-efficiency curve: accuracy vs labels for ULMFiT, a random encoder and TF-IDF.

Usage: python stages/label_curve.py --params params.yaml POINTS_DIR --png curve.png --table curve.md --metrics M.json
Reads params `imdb.prepare` (its `curve`: the budgets whose POINTS_DIR/<n>-<init>/metrics.json are read).
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.curve import label_curve


def main(argv=None):
    return stage_main(__doc__, label_curve, argv, params={"p": "imdb.prepare"},
                      args=[arg("points", type=Path, help="train_curve's reports: <n>-<init>/metrics.json"), arg("--png", type=Path, required=True),
                            arg("--table", type=Path, required=True)])


if __name__ == "__main__":
    main()
