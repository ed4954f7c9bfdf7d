"""Tokenize a label,text CSV, or every CSV of a directory, (fastai rules + spaCy) into token stores.

Named tokenize_text.py, not tokenize.py: a script directory is sys.path[0], and a stages/tokenize.py
would shadow the standard library's `tokenize` (imported by dataclasses/inspect) and crash.

Usage: python stages/tokenize_text.py --params params.yaml SRC OUT_DIR [--metrics FILE]
SRC: a CSV (OUT_DIR is its token store) or a directory (OUT_DIR/<name>/ per <name>.csv; see
dlpipe.text.corpus). Reads params `imdb.tokenize` (n_workers, chunk_size).
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.text.tokenize import tokenize


def main(argv=None):
    return stage_main(__doc__, tokenize, argv, params={"p": "imdb.tokenize"},
               args=[arg("src", type=Path, help="no-header label,text CSV, or a directory of them"),
                     arg("out", type=Path, help="token store (or directory of them) to write")])


if __name__ == "__main__":
    main()
