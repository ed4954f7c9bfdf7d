"""Tokenize a label,text CSV (fastai rules + spaCy) into a token store (see dlpipe.text.corpus).

Named tokenize_text.py, not tokenize.py: a script directory is sys.path[0], and a stages/tokenize.py
would shadow the standard library's `tokenize` (imported by dataclasses/inspect) and crash.

Usage: python stages/tokenize_text.py --params params.yaml SRC_CSV OUT_DIR [--metrics FILE]
Reads params `imdb.tokenize` (n_workers, chunk_size).
"""
from __future__ import annotations

import argparse

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.text.tokenize import TokenizeParams, tokenize_csv
from dlpipe.errors import run_stage


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="no-header label,text CSV")
    ap.add_argument("out", help="token store directory to write")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--metrics", help="metrics JSON to write")
    args = ap.parse_args(argv)
    p = params.load(TokenizeParams, "imdb.tokenize", args.params)
    metrics = tokenize_csv(args.src, args.out, p)
    if args.metrics:
        write_json(args.metrics, metrics)
    return metrics


if __name__ == "__main__":
    run_stage(main)
