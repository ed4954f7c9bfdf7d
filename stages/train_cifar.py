"""Train the Darknet on CIFAR-10 with one-cycle (lesson 12), evaluated on the 10k test images.

Usage: python stages/train_cifar.py --params params.yaml SRC MODEL --log-dir DIR [--run-dir DIR] [--metrics FILE]
Reads params `cifar.model`, `cifar.data`, `cifar.train`, `runtime`. MODEL gets the network; DIR gets
history.tsv, curves.png, confusion.png, misclassified.png; the run dir holds resume checkpoints.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.cifar.train import train_cifar


def main(argv=None):
    return stage_main(__doc__, train_cifar, argv, run_dirs=True,
                      params={"m": "cifar.model", "d": "cifar.data", "p": "cifar.train", "rt": "runtime"},
                      args=[arg("src", type=Path, help="decode_cifar output"), arg("model", type=Path, help="model.pt to write")])


if __name__ == "__main__":
    main()
