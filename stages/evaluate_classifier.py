"""Evaluate a classifier on the validation reviews, beside a TF-IDF + logistic-regression baseline.

Usage: python stages/evaluate_classifier.py --params params.yaml --direction fwd|bwd
           CLASSIFIER DATA_DIR TRAIN_CSV VALID_CSV CLASSES OUT_DIR --metrics M.json --report-dir DIR

OUT_DIR gets probs.npy and labels.npy (for the ensemble); REPORT_DIR gets confusion.png.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.tasks.imdb_clas import EvalParams
from dlpipe.tasks.imdb_eval import evaluate_classifier
from dlpipe.tasks.imdb_lm import RuntimeParams
from dlpipe.errors import run_stage


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("classifier", "data", "train_csv", "valid_csv", "classes", "out"):
        ap.add_argument(name, type=Path)
    ap.add_argument("--direction", choices=("fwd", "bwd"), required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--report-dir", type=Path, required=True)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    p = params.load(EvalParams, "imdb.evaluate", a.params)
    rt = params.load(RuntimeParams, "runtime", a.params)
    metrics = evaluate_classifier(a.classifier, a.data, a.train_csv, a.valid_csv, a.classes, a.out,
                                  a.report_dir, p, rt, a.direction)
    write_json(a.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
