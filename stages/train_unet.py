"""Train one U-Net variant on the indexed masks: decoder first, then all layers; small images, then full.

Usage: python stages/train_unet.py --params params.yaml DATA BACKBONE MODEL --variant NAME --log-dir DIR
       [--run-dir DIR] [--metrics FILE]
Reads params `unet.encoder`, `unet.model`, `unet.variants.<NAME>`, `unet.data`, `unet.train`, `runtime`.
DATA is index_masks' output, BACKBONE the encoder file; MODEL gets the network, DIR history.tsv and curves.png.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.unet.train import train_unet


def main(argv=None):
    return stage_main(__doc__, train_unet, argv, ddp=True, run_dirs=True,
                      params={"e": "unet.encoder", "m": "unet.model", "v": "unet.variants.{variant}", "d": "unet.data",
                              "p": "unet.train", "rt": "runtime"},
                      args=[arg("data", type=Path, help="index_masks output"), arg("backbone", type=Path, help="encoder file"),
                            arg("model", type=Path, help="model.pt to write"), arg("--variant", required=True)])


if __name__ == "__main__":
    main()
