"""Evaluate a classifier on the validation reviews, beside a TF-IDF + logistic-regression baseline.

Usage: python stages/evaluate_classifier.py --params params.yaml --direction fwd|bwd
           CLASSIFIER DATA_DIR CSV_DIR OUT_DIR --metrics M.json --report-dir DIR

DATA_DIR: the classifier id corpora; CSV_DIR: prepare_imdb's clas/ (+ classes.txt beside it, for the
TF-IDF baseline). OUT_DIR gets probs_<set>.npy and labels_<set>.npy (for the ensemble); REPORT_DIR
gets confusion_<set>.png.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.evaluate import evaluate_classifier
from dlpipe.tasks.ulmfit.params import DIRECTIONS


def main(argv=None):
    return stage_main(__doc__, evaluate_classifier, argv, params={"p": "imdb.evaluate", "rt": "runtime"},
               args=[*(arg(n, type=Path) for n in ("classifier", "data", "csvs", "out")),
                     arg("--direction", choices=DIRECTIONS, required=True),
                     arg("--report-dir", type=Path, required=True, help="confusion.png")])


if __name__ == "__main__":
    main()
