"""Run the frozen backbone over an indexed dataset and store the activations of a named layer.

Usage: python stages/precompute.py --params params.yaml --dataset NAME SRC INDEX_DIR MODEL OUT --metrics METRICS

Writes one feature store per split (OUT/train, OUT/valid, ...), rows in a seeded pre-shuffled order;
see dlpipe.io.arrays for the format. MODEL is a Darknet backbone file (export_backbone's CIFAR-10 one or
pretrain_backbone's MNIST one), or with vision.backbone.weights torchvision:<arch> a local state_dict of
that architecture; dvc.yaml passes vision.precompute.<NAME>.src and .backbone as SRC and MODEL.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.transfer.precompute import precompute


def main(argv=None):
    return stage_main(__doc__, precompute, argv,
               params={"bb": "vision.backbone", "p": "vision.precompute.{dataset}", "rt": "runtime"},
               args=[arg("--dataset", required=True, help="dataset name: selects vision.precompute.<NAME>"),
                     arg("src", type=Path, help="raw image folder or archive"),
                     arg("index", type=Path, help="index_images output directory (index.csv)"),
                     arg("model", type=Path, help="pretrained backbone.pt"),
                     arg("out", type=Path, help="output directory: one store per split")])


if __name__ == "__main__":
    main()
