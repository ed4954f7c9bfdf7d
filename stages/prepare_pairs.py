"""Parallel caption files -> normalised, tokenized sentence pairs per language and split (train capped).

Usage: python stages/prepare_pairs.py --params params.yaml SRC_DIR OUT_DIR [--metrics FILE]
Reads params `seq2seq.prepare`. SRC_DIR holds <stem>.<lang>.gz files; OUT_DIR gets <lang>/<split>/
token stores and text/<split>.<lang> (the normalised sentences: BLEU references).
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.seq2seq.prepare import prepare_pairs


def main(argv=None):
    return stage_main(__doc__, prepare_pairs, argv, params={"p": "seq2seq.prepare"},
                      args=[arg("src", type=Path, help="directory of <stem>.<lang>.gz files"),
                            arg("out", type=Path, help="output directory")])


if __name__ == "__main__":
    main()
