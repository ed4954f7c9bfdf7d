"""Build the pretraining corpus (WikiText articles + other English text) as label,text CSVs.

Usage: python stages/prepare_lm_corpus.py --params params.yaml --wikitext DIR
           [--shakespeare FILE] [--multi30k DIR] OUT_DIR [--metrics FILE]
Reads params `imdb.lm_corpus`. Writes OUT_DIR/train.csv and OUT_DIR/valid.csv (held-out articles).
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.corpus import prepare_lm_corpus


def main(argv=None):
    return stage_main(__doc__, prepare_lm_corpus, argv, params={"p": "imdb.lm_corpus"},
               args=[arg("out", type=Path, help="output directory"),
                     arg("--wikitext", type=Path, required=True, help="directory with wiki.*.tokens"),
                     arg("--shakespeare", type=Path, help="tinyshakespeare input.txt (used if params say so)"),
                     arg("--multi30k", type=Path, help="Multi30k directory with *.en.gz (files named in params)")])


if __name__ == "__main__":
    main()
