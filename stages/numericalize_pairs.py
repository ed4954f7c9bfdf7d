"""One language of the sentence pairs: a vocabulary from its training side, id corpora for every split.

Usage: python stages/numericalize_pairs.py --params params.yaml TOK_DIR OUT_DIR [--metrics FILE]
Reads params `seq2seq.numericalize`. TOK_DIR: prepare_pairs' <lang>/ (train/, valid/, test/ token
stores); OUT_DIR gets itos.json and one id corpus per split.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.text.vocab import numericalize_splits


def main(argv=None):
    return stage_main(__doc__, numericalize_splits, argv, params={"p": "seq2seq.numericalize"},
                      args=[arg("tok_dir", type=Path, help="token stores, one per split"),
                            arg("out", type=Path, help="itos.json + one id corpus per split")])


if __name__ == "__main__":
    main()
