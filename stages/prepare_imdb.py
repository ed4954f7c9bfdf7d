"""Normalise raw IMDb into label,text CSVs: clas/{train,valid}.csv + classes.txt, lm/{train,valid}.csv.

Usage: python stages/prepare_imdb.py --params params.yaml RAW_DIR OUT_DIR [--metrics FILE]
Reads params `imdb.prepare`. RAW_DIR is fastai's imdb_sample or the full IMDb folders.
"""
from __future__ import annotations

import argparse

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.text.prepare import PrepareParams, prepare_imdb
from dlpipe.errors import run_stage


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="raw IMDb directory")
    ap.add_argument("out", help="output directory (gets clas/ and lm/)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--metrics", help="metrics JSON to write")
    args = ap.parse_args(argv)
    p = params.load(PrepareParams, "imdb.prepare", args.params)
    metrics = prepare_imdb(args.src, args.out, p)
    if args.metrics:
        write_json(args.metrics, metrics)
    return metrics


if __name__ == "__main__":
    run_stage(main)
