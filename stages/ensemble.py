"""Average the forward and backward classifiers' validation probabilities (ULMFiT's ensemble).

Usage: python stages/ensemble.py FWD_EVAL_DIR BWD_EVAL_DIR --metrics reports/imdb/ensemble/metrics.json
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe.io.atomic import write_json
from dlpipe.tasks.imdb_eval import ensemble
from dlpipe.errors import run_stage


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fwd", type=Path, help="evaluate output of the forward model (probs.npy, labels.npy)")
    ap.add_argument("bwd", type=Path, help="evaluate output of the backward model")
    ap.add_argument("--metrics", type=Path, required=True)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    write_json(a.metrics, ensemble(a.fwd, a.bwd))


if __name__ == "__main__":
    run_stage(main)
