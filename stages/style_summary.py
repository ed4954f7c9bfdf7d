"""Summarise the style task: every Gatys pair and the fast transformer graded by the judge; the speed-up.

Usage: python stages/style_summary.py --params params.yaml GATYS FAST OUT [--metrics FILE]
Reads params `style.pairs`. GATYS holds <content>-<style>/metrics.json of every pair, FAST is train_fast_style's
metrics.json; OUT gets results.md.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.style.summary import style_summary


def main(argv=None):
    return stage_main(__doc__, style_summary, argv, params={"pairs": "style.pairs"},
                      args=[arg("gatys", type=Path, help="the gatys stages' reports folder"),
                            arg("fast", type=Path, help="train_fast_style's metrics.json"),
                            arg("out", type=Path, help="output directory")])


if __name__ == "__main__":
    main()
