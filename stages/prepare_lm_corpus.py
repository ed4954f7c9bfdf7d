"""Build the pretraining corpus (WikiText articles + Project Gutenberg books) as label,text CSVs.

Usage: python stages/prepare_lm_corpus.py --params params.yaml --wikitext DIR [--gutenberg ARCHIVE]
           [--exclude EVAL_CSV ...] OUT_DIR [--metrics FILE]
Reads params `imdb.lm_corpus`. Writes OUT_DIR/train.csv and OUT_DIR/valid.csv (held-out articles and
authors; label = source). Texts equal to an --exclude CSV's texts are dropped (and counted).
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.corpus import prepare_lm_corpus


def main(argv=None):
    return stage_main(__doc__, prepare_lm_corpus, argv, params={"p": "imdb.lm_corpus"},
                      args=[arg("out", type=Path, help="output directory"),
                            arg("--wikitext", type=Path, required=True, help="directory with wiki.*.tokens"),
                            arg("--gutenberg", type=Path, help="the Gutenberg books archive"),
                            arg("--exclude", type=Path, action="append", default=[], help="evaluation CSV")])


if __name__ == "__main__":
    main()
