"""Deep Dream: gradient ascent on a loss network's layers over octaves, with jitter, on the content photos.

Usage: python stages/deep_dream.py --params params.yaml IMAGES BACKBONE OUT PLOTS [--metrics FILE]
Reads params `style.networks`, `style.deep_dream`, `runtime`. OUT gets <photo>.png, PLOTS before_after.png.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.style.dream import dream


def main(argv=None):
    return stage_main(__doc__, dream, argv, params={"nets": "style.networks", "p": "style.deep_dream", "rt": "runtime"},
                      args=[arg("images", type=Path, help="style_transfer folder"), arg("backbone", type=Path, help="Darknet file"),
                            arg("out", type=Path, help="output images dir"), arg("plots", type=Path, help="pictures dir")])


if __name__ == "__main__":
    main()
