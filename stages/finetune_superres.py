"""Fine-tune an L1 super-resolution model with the perceptual loss (pixel + loss-network feature + Gram L1).

Usage: python stages/finetune_superres.py --params params.yaml PHOTOS INIT BACKBONE MODEL --variant NAME
       --log-dir DIR [--run-dir DIR] [--metrics FILE]
Reads params `superres.variants.<NAME>`, `superres.data`, `superres.loss_network`, `superres.finetune`, `runtime`.
INIT is train_superres' model, BACKBONE the loss network's file (source: backbone); MODEL gets the network.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.superres.finetune import finetune_superres


def main(argv=None):
    return stage_main(__doc__, finetune_superres, argv, ddp=True, run_dirs=True,
                      params={"s": "superres.variants.{variant}", "d": "superres.data", "ln": "superres.loss_network",
                              "p": "superres.finetune", "rt": "runtime"},
                      args=[arg("photos", type=Path, help="index_photos output"), arg("init", type=Path, help="the L1 model"),
                            arg("backbone", type=Path, help="loss network file"), arg("model", type=Path, help="model.pt to write"),
                            arg("--variant", required=True)])


if __name__ == "__main__":
    main()
