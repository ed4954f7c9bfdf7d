"""Gather the label-efficiency curve: accuracy vs labels for ULMFiT, a random encoder and TF-IDF.

Usage: python stages/label_curve.py POINTS_DIR_OR_METRICS.json ... --png curve.png --table curve.md --metrics M.json
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.curve import label_curve


def main(argv=None):
    return stage_main(__doc__, label_curve, argv,
                      args=[arg("points", type=Path, nargs="+"), arg("--png", type=Path, required=True),
                            arg("--table", type=Path, required=True)])


if __name__ == "__main__":
    main()
