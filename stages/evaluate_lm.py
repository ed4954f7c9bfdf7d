"""Perplexity of a direction's pretrained and fine-tuned LMs on held-out general text and reviews.

Usage: python stages/evaluate_lm.py --direction fwd|bwd --lm NAME=LM_DIR ... GENERAL_TOK REVIEWS_TOK --metrics M.json
GENERAL_TOK: the pretraining corpus's held-out token store (labels = source); REVIEWS_TOK: the IMDb LM's.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.lm_eval import evaluate_lm
from dlpipe.tasks.ulmfit.params import DIRECTIONS


def _pair(s: str) -> tuple[str, Path]:
    name, _, path = s.partition("=")
    return name, Path(path)


def main(argv=None):
    return stage_main(__doc__, evaluate_lm, argv, params={"p": "imdb.evaluate_lm", "rt": "runtime"},
                      args=[arg("--direction", choices=DIRECTIONS, required=True),
                            arg("--lm", dest="lms", type=_pair, action="append", required=True, help="NAME=LM_DIR"),
                            arg("general", type=Path), arg("reviews", type=Path)])


if __name__ == "__main__":
    main()
