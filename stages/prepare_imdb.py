"""Split the full aclImdb reviews (+ imdb_sample's) into classifier, curve, evaluation and LM CSV sets.

Usage: python stages/prepare_imdb.py --params params.yaml ACL_ARCHIVE SAMPLE_DIR OUT_DIR [--metrics FILE]
Reads params `imdb.prepare`. ACL_ARCHIVE: aclImdb_v1.tar.gz (official or the mirror's repack);
SAMPLE_DIR: fastai's imdb_sample (valid.csv, classes.txt). OUT_DIR gets classes.txt, clas/, lm/.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.prepare import prepare_imdb


def main(argv=None):
    return stage_main(__doc__, prepare_imdb, argv, params={"p": "imdb.prepare"},
                      args=[arg("acl", type=Path, help="aclImdb archive"), arg("sample", type=Path, help="imdb_sample"),
                            arg("out", type=Path, help="output directory")])


if __name__ == "__main__":
    main()
