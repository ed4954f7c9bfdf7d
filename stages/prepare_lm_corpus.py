"""Build the pretraining corpus (WikiText articles + other English text) as label,text CSVs.

Usage: python stages/prepare_lm_corpus.py --params params.yaml --wikitext DIR
           [--shakespeare FILE] [--multi30k DIR] OUT_DIR [--metrics FILE]
Reads params `imdb.lm_corpus`. Writes OUT_DIR/train.csv and OUT_DIR/valid.csv (held-out articles).
"""
from __future__ import annotations

import argparse

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.text.wikitext import LMCorpusParams, prepare_lm_corpus
from dlpipe.errors import run_stage


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output directory")
    ap.add_argument("--wikitext", required=True, help="directory with wiki.*.tokens")
    ap.add_argument("--shakespeare", help="tinyshakespeare input.txt (used if params say so)")
    ap.add_argument("--multi30k", help="Multi30k directory with *.en.gz (files named in params)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--metrics", help="metrics JSON to write")
    args = ap.parse_args(argv)
    p = params.load(LMCorpusParams, "imdb.lm_corpus", args.params)
    metrics = prepare_lm_corpus(args.wikitext, args.out, p, shakespeare=args.shakespeare,
                                multi30k_dir=args.multi30k)
    if args.metrics:
        write_json(args.metrics, metrics)
    return metrics


if __name__ == "__main__":
    run_stage(main)
