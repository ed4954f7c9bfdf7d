"""Average the forward and backward classifiers' validation probabilities (ULMFiT's ensemble).

Usage: python stages/ensemble.py FWD_EVAL_DIR BWD_EVAL_DIR --metrics reports/imdb/ensemble/metrics.json
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.ensemble import ensemble


def main(argv=None):
    return stage_main(__doc__, ensemble, argv,
               args=[arg("fwd", type=Path, help="evaluate output of the forward model (probs.npy, labels.npy)"),
                     arg("bwd", type=Path, help="evaluate output of the backward model")])


if __name__ == "__main__":
    main()
