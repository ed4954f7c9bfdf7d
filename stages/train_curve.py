"""One point of the label-efficiency curve: a forward classifier on N labelled reviews, from the
fine-tuned LM (ulmfit) or a random encoder, scored on the test reviews beside TF-IDF on the same labels.

Usage: python stages/train_curve.py --n N --init ulmfit|random PRE_DIR FT_DIR ITOS DATA_DIR CSV_DIR OUT_DIR
           --metrics M.json --log-dir DIR --run-dir DIR
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.curve import curve_point


def main(argv=None):
    return stage_main(__doc__, curve_point, argv, ddp=True, run_dirs=True,
                      params={"m": "imdb.model", "p": "imdb.train_classifier", "c": "imdb.curve",
                              "e": "imdb.evaluate", "rt": "runtime"},
                      args=[*(arg(n, type=Path) for n in ("pre", "ft", "itos", "data", "csvs", "out")),
                            arg("--n", type=int, required=True), arg("--init", choices=("ulmfit", "random"), required=True)])


if __name__ == "__main__":
    main()
