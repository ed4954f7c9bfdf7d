"""Normalise raw IMDb into label,text CSVs: clas/{train,valid}.csv + classes.txt, lm/{train,valid}.csv.

Usage: python stages/prepare_imdb.py --params params.yaml RAW_DIR OUT_DIR [--metrics FILE]
Reads params `imdb.prepare`. RAW_DIR is fastai's imdb_sample or the full IMDb folders.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.prepare import prepare_imdb


def main(argv=None):
    return stage_main(__doc__, prepare_imdb, argv, params={"p": "imdb.prepare"},
               args=[arg("src", type=Path, help="raw IMDb directory"),
                     arg("out", type=Path, help="output directory (gets clas/ and lm/)")])


if __name__ == "__main__":
    main()
