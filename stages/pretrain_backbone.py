"""Pretrain the Darknet backbone on MNIST digits with one-cycle.

Usage: python stages/pretrain_backbone.py --params params.yaml SRC MODEL --log-dir DIR --run-dir DIR --metrics METRICS

SRC is the output of ``index_images --format idx``; MODEL gets the weights (state_dict, DarknetConfig,
input normalisation); DIR gets history.tsv and curves.png; the run dir holds resume checkpoints.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.transfer.backbone import pretrain_backbone


def main(argv=None):
    return stage_main(__doc__, pretrain_backbone, argv, ddp=True, run_dirs=True,
               params={"bb": "vision.backbone", "p": "vision.pretrain_backbone", "rt": "runtime"},
               args=[arg("src", type=Path, help="MNIST split arrays (index_images output)"),
                     arg("model", type=Path, help="backbone.pt to write")])


if __name__ == "__main__":
    main()
