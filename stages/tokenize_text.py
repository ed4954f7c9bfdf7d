"""Tokenize a label,text CSV (fastai rules + spaCy) into a token store (see dlpipe.text.corpus).

Named tokenize_text.py, not tokenize.py: a script directory is sys.path[0], and a stages/tokenize.py
would shadow the standard library's `tokenize` (imported by dataclasses/inspect) and crash.

Usage: python stages/tokenize_text.py --params params.yaml SRC_CSV OUT_DIR [--metrics FILE]
Reads params `imdb.tokenize` (n_workers, chunk_size).
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.text.tokenize import tokenize_csv


def main(argv=None):
    return stage_main(__doc__, tokenize_csv, argv, params={"p": "imdb.tokenize"},
               args=[arg("src", type=Path, help="no-header label,text CSV"),
                     arg("out", type=Path, help="token store directory to write")])


if __name__ == "__main__":
    main()
