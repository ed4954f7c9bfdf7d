"""Score every U-Net variant on the validation and test masks at full resolution.

Usage: python stages/evaluate_unet.py --params params.yaml DATA OUT --model unet=PATH [--model NAME=PATH ...]
       [--metrics FILE]
Reads params `unet.evaluate`, `runtime`. OUT gets confusion.png, overlays.png, iou.png and results.md.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.unet.evaluate import evaluate_unet


def main(argv=None):
    return stage_main(__doc__, evaluate_unet, argv, params={"p": "unet.evaluate", "rt": "runtime"},
                      args=[arg("data", type=Path, help="index_masks output"), arg("out", type=Path, help="pictures dir"),
                            arg("--model", action="append", required=True, help="NAME=PATH, one per variant")])


if __name__ == "__main__":
    main()
