"""Export train_cifar's Darknet as the vision tasks' backbone (weights, config, taps, normalisation).

Usage: python stages/export_backbone.py MODEL TRAIN_METRICS OUT [--metrics FILE]
Reads no params: everything comes from train_cifar's model.pt and metrics.json.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.cifar.export import export_backbone


def main(argv=None):
    return stage_main(__doc__, export_backbone, argv,
                      args=[arg("model", type=Path, help="train_cifar's model.pt"),
                            arg("metrics_in", type=Path, help="train_cifar's metrics.json"),
                            arg("out", type=Path, help="backbone.pt to write")])


if __name__ == "__main__":
    main()
