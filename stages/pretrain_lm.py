"""Pretrain an AWD-LSTM language model from scratch on the pretraining corpus (WikiText-2 + ...).

Usage: python stages/pretrain_lm.py --params params.yaml --direction fwd|bwd DATA_DIR OUT_DIR
           --metrics reports/imdb/pretrain_lm/fwd/metrics.json --log-dir reports/imdb/pretrain_lm/fwd
           --run-dir data/runs/imdb/pretrain_lm-fwd

DATA_DIR holds itos.json, train/ and valid/ id corpora; OUT_DIR gets lm.pt, encoder.pt, itos.json,
embeddings.npy. ``--direction bwd`` trains on the reversed token stream.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.train.distributed import is_main, launch
from dlpipe.tasks.imdb_lm import LMParams, ModelParams, RuntimeParams, pretrain_lm
from dlpipe.errors import run_stage


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="pretraining corpus directory")
    ap.add_argument("out", type=Path, help="LM output directory")
    ap.add_argument("--direction", choices=("fwd", "bwd"), required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--log-dir", type=Path, required=True, help="history.tsv + curves.png")
    ap.add_argument("--run-dir", type=Path, required=True, help="resume checkpoints (not a DVC output)")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    m = params.load(ModelParams, "imdb.model", a.params)
    p = params.load(LMParams, "imdb.pretrain_lm", a.params)
    rt = params.load(RuntimeParams, "runtime", a.params)
    if launch(rt.nproc_per_node):        # > 1 process: re-run under torchrun, which did the work
        return
    metrics = pretrain_lm(a.data, a.out, m, p, rt, a.direction, a.run_dir, a.log_dir)
    if is_main():
        write_json(a.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
