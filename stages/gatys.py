"""Gatys style transfer of one content photo and one painting: pixels optimised with L-BFGS on each loss network.

Usage: python stages/gatys.py --params params.yaml IMAGES BACKBONE OUT PLOTS --content NAME --style NAME [--metrics FILE]
Reads params `style.networks`, `style.gatys`, `runtime`. IMAGES holds content/ and style/ (style_transfer);
BACKBONE is the Darknet file of networks with source backbone. OUT gets <network>.png, PLOTS side_by_side.png
and loss_curves.png.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.style.gatys import gatys


def main(argv=None):
    return stage_main(__doc__, gatys, argv, params={"nets": "style.networks", "p": "style.gatys", "rt": "runtime"},
                      args=[arg("images", type=Path, help="style_transfer folder"), arg("backbone", type=Path, help="Darknet file"),
                            arg("out", type=Path, help="output images dir"), arg("plots", type=Path, help="pictures dir"),
                            arg("--content", required=True), arg("--style", required=True)])


if __name__ == "__main__":
    main()
