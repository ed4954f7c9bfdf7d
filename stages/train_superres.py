"""Train one super-resolution scale (EDSR, pixel L1) on random patches of the indexed photos.

Usage: python stages/train_superres.py --params params.yaml PHOTOS MODEL --variant NAME --log-dir DIR
       [--run-dir DIR] [--metrics FILE]
Reads params `superres.model`, `superres.variants.<NAME>`, `superres.data`, `superres.train`, `runtime`.
PHOTOS is index_photos' output; MODEL gets the network, DIR history.tsv and curves.png.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.superres.train import train_superres


def main(argv=None):
    return stage_main(__doc__, train_superres, argv, ddp=True, run_dirs=True,
                      params={"m": "superres.model", "s": "superres.variants.{variant}", "d": "superres.data",
                              "p": "superres.train", "rt": "runtime"},
                      args=[arg("photos", type=Path, help="index_photos output"), arg("model", type=Path, help="model.pt to write"),
                            arg("--variant", required=True)])


if __name__ == "__main__":
    main()
