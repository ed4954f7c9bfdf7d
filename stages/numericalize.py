"""Token stores -> id corpora (ids.npy/offsets.npy/labels.npy) with one vocabulary (itos.json).

Usage: python stages/numericalize.py --params params.yaml --split train=TOK_DIR --split valid=TOK_DIR
           [--vocab-from ITOS_JSON] OUT_DIR [--metrics FILE]
Without --vocab-from, builds OUT_DIR/itos.json from the train split (params `imdb.numericalize`);
with it (the classifier reusing the LM's vocabulary), reads no params.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.text.vocab import NumericalizeParams, numericalize_splits
from dlpipe.errors import run_stage


def _split(arg: str) -> tuple[str, Path]:
    name, sep, path = arg.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=TOKEN_DIR, got {arg!r}")
    return name, Path(path)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output directory: itos.json (if built) and one corpus per split")
    ap.add_argument("--split", type=_split, action="append", required=True, help="NAME=TOKEN_DIR")
    ap.add_argument("--vocab-from", help="reuse this itos.json instead of building one")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--metrics", help="metrics JSON to write")
    args = ap.parse_args(argv)
    p = None if args.vocab_from else params.load(NumericalizeParams, "imdb.numericalize", args.params)
    metrics = numericalize_splits(dict(args.split), args.out, p, vocab_from=args.vocab_from)
    if args.metrics:
        write_json(args.metrics, metrics)
    return metrics


if __name__ == "__main__":
    run_stage(main)
