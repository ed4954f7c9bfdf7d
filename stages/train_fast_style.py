"""Train Johnson et al.'s feed-forward style transformer for one painting, then stylise and time the content photos.

Usage: python stages/train_fast_style.py --params params.yaml PHOTOS IMAGES BACKBONE MODEL OUT PLOTS --log-dir DIR
       [--run-dir DIR] [--metrics FILE]
Reads params `style.networks`, `style.train_fast_style`, `runtime`. PHOTOS is index_photos' output (the training
crops), IMAGES the style_transfer folder; MODEL gets the transformer, OUT the stylised photos, PLOTS stylised.png.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.style.fast_style import train_fast_style


def main(argv=None):
    return stage_main(__doc__, train_fast_style, argv, ddp=True, run_dirs=True,
                      params={"nets": "style.networks", "p": "style.train_fast_style", "rt": "runtime"},
                      args=[arg("photos", type=Path, help="index_photos output"), arg("images", type=Path, help="style_transfer folder"),
                            arg("backbone", type=Path, help="Darknet file"), arg("model", type=Path, help="model.pt to write"),
                            arg("out", type=Path, help="stylised photos dir"), arg("plots", type=Path, help="pictures dir")])


if __name__ == "__main__":
    main()
