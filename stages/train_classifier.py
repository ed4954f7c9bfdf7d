"""Train the ULMFiT sentiment classifier: fine-tuned encoder + concat-pooling head, gradual unfreezing.

Usage: python stages/train_classifier.py --params params.yaml --direction fwd|bwd
           PRE_DIR FT_DIR ITOS DATA_DIR OUT_DIR --metrics M.json --log-dir DIR --run-dir DIR

PRE_DIR/FT_DIR: pretrained and fine-tuned LM directories (which one is used depends on the
ablation flags in imdb.train_classifier); ITOS: the IMDb LM vocabulary the classifier corpus uses;
DATA_DIR: train/ and valid/ id corpora with labels; OUT_DIR gets classifier.pt.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.train.distributed import is_main, launch
from dlpipe.tasks.imdb_clas import ClassifierParams, train_classifier
from dlpipe.tasks.imdb_lm import ModelParams, RuntimeParams
from dlpipe.errors import run_stage


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("pre", "ft", "itos", "data", "out"):
        ap.add_argument(name, type=Path)
    ap.add_argument("--direction", choices=("fwd", "bwd"), required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--log-dir", type=Path, required=True)
    ap.add_argument("--run-dir", type=Path, required=True)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    m = params.load(ModelParams, "imdb.model", a.params)
    p = params.load(ClassifierParams, "imdb.train_classifier", a.params)
    rt = params.load(RuntimeParams, "runtime", a.params)
    if launch(rt.nproc_per_node):        # > 1 process: re-run under torchrun, which did the work
        return
    metrics = train_classifier(a.pre, a.ft, a.itos, a.data, a.out, m, p, rt, a.direction, a.run_dir, a.log_dir)
    if is_main():
        write_json(a.metrics, metrics)


if __name__ == "__main__":
    run_stage(main)
