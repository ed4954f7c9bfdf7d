"""The LR finder for the CIFAR-10 Darknet: an exponential sweep over training batches, as a plot.

Usage: python stages/lr_find_cifar.py --params params.yaml SRC --log-dir DIR [--metrics FILE]
Reads params `cifar.model`, `cifar.data`, `cifar.lr_find`, `runtime`. DIR gets lr_find.png; metrics hold
the suggestion (lr at the smoothed loss minimum / 10) and the steepest point.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.cifar.train import lr_find_cifar


def main(argv=None):
    return stage_main(__doc__, lr_find_cifar, argv, run_dirs=True,
                      params={"m": "cifar.model", "d": "cifar.data", "p": "cifar.lr_find", "rt": "runtime"},
                      args=[arg("src", type=Path, help="decode_cifar output")])


if __name__ == "__main__":
    main()
