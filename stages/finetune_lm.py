"""Fine-tune the pretrained LM on the IMDb LM set (vocabulary remap, last group first, then all).

Usage: python stages/finetune_lm.py --params params.yaml --direction fwd|bwd PRE_DIR DATA_DIR OUT_DIR
           --metrics M.json --log-dir DIR --run-dir DIR

PRE_DIR is a pretrain_lm output (lm.pt, itos.json); DATA_DIR holds the IMDb LM itos.json, train/,
valid/; OUT_DIR gets lm.pt, encoder.pt (for the classifier), itos.json, embeddings.npy.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.train.distributed import is_main, launch
from dlpipe.tasks.imdb_lm import LMParams, ModelParams, RuntimeParams, finetune_lm
from dlpipe.errors import run_stage


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pre", type=Path, help="pretrained LM directory")
    ap.add_argument("data", type=Path, help="IMDb LM corpus directory")
    ap.add_argument("out", type=Path, help="fine-tuned LM output directory")
    ap.add_argument("--direction", choices=("fwd", "bwd"), required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--log-dir", type=Path, required=True)
    ap.add_argument("--run-dir", type=Path, required=True)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    m = params.load(ModelParams, "imdb.model", a.params)
    p = params.load(LMParams, "imdb.finetune_lm", a.params)
    rt = params.load(RuntimeParams, "runtime", a.params)
    if launch(rt.nproc_per_node):        # > 1 process: re-run under torchrun, which did the work
        return
    metrics = finetune_lm(a.pre, a.data, a.out, m, p, rt, a.direction, a.run_dir, a.log_dir)
    if is_main():
        write_json(a.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
