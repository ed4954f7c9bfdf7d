"""Pretrain an AWD-LSTM language model from scratch on the pretraining corpus (WikiText-2 + ...).

Usage: python stages/pretrain_lm.py --params params.yaml --direction fwd|bwd DATA_DIR OUT_DIR
           --metrics reports/imdb/pretrain_lm/fwd/metrics.json --log-dir reports/imdb/pretrain_lm/fwd
           --run-dir data/runs/imdb/pretrain_lm-fwd

DATA_DIR holds itos.json, train/ and valid/ id corpora; OUT_DIR gets lm.pt, encoder.pt, itos.json,
embeddings.npy. ``--direction bwd`` trains on the reversed token stream.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.lm import pretrain_lm
from dlpipe.tasks.ulmfit.params import DIRECTIONS


def main(argv=None):
    return stage_main(__doc__, pretrain_lm, argv, ddp=True, run_dirs=True,
               params={"m": "imdb.model", "p": "imdb.pretrain_lm", "rt": "runtime"},
               args=[arg("data", type=Path, help="pretraining corpus directory"),
                     arg("out", type=Path, help="LM output directory"),
                     arg("--direction", choices=DIRECTIONS, required=True)])


if __name__ == "__main__":
    main()
