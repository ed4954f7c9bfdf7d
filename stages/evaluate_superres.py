"""Score super-resolution models on the benchmark sets (Y-channel PSNR/SSIM, border = scale) beside bicubic.

Usage: python stages/evaluate_superres.py --params params.yaml BENCH OUT --model NAME=PATH [--model NAME=PATH ...]
       [--metrics FILE]
Reads params `superres.evaluate`, `runtime`. BENCH holds the sets' folders (sr_benchmarks); each model's
scale comes from its file. OUT gets crops_x<scale>.png and results.md.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.superres.evaluate import evaluate_superres


def main(argv=None):
    return stage_main(__doc__, evaluate_superres, argv, params={"p": "superres.evaluate", "rt": "runtime"},
                      args=[arg("bench", type=Path, help="sr_benchmarks folder"), arg("out", type=Path, help="pictures dir"),
                            arg("--model", action="append", required=True, help="NAME=PATH, one per model")])


if __name__ == "__main__":
    main()
