"""DeViSE: match class names to the LM's word vectors, train a cosine-loss head on features, search.

Usage:
  python stages/devise.py vocab --params params.yaml ITOS EMB FEATURES OUT_DIR --report vocab_match.md --metrics M.json
  python stages/devise.py train --params params.yaml FEATURES VECTORS_DIR HEAD_OUT --log-dir DIR --run-dir DIR --metrics M.json
  python stages/devise.py search --params params.yaml FEATURES VECTORS_DIR HEAD ITOS EMB RAW INDEX_DIR OUT_DIR

ITOS/EMB: the ULMFiT pretrained LM's itos.json and embeddings.npy. FEATURES: train/ and valid/
feature stores. ``search`` writes OUT_DIR/{metrics.json, report.md, image_to_words.png, text_to_images.png}.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.train.distributed import is_main, launch
from dlpipe.tasks import devise as D
from dlpipe.runtime import RuntimeParams
from dlpipe.errors import run_stage

ARGS = {"vocab": ["itos", "emb", "features", "out_dir"],
        "train": ["features", "vectors", "head_out"],
        "search": ["features", "vectors", "head", "itos", "emb", "raw", "index_dir", "out_dir"]}


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    for mode, names in ARGS.items():
        sp = sub.add_parser(mode)
        for n in names:
            sp.add_argument(n, type=Path)
        sp.add_argument("--params", type=Path, default=Path("params.yaml"))
        if mode != "search":
            sp.add_argument("--metrics", type=Path, required=True)
        if mode == "vocab":
            sp.add_argument("--report", type=Path, required=True)
        if mode == "train":
            sp.add_argument("--log-dir", type=Path, required=True)
            sp.add_argument("--run-dir", type=Path, default=None)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    p = params.load(D.DeviseParams, "vision.devise", a.params)
    if a.mode == "vocab":
        write_json(a.metrics, D.vocab(a.itos, a.emb, a.features, a.out_dir, a.report, p))
        return
    rt = params.load(RuntimeParams, "runtime", a.params)
    if a.mode == "train":
        if launch(rt.nproc_per_node):    # > 1 process: re-run under torchrun, which did the work
            return
        metrics = D.train(a.features, a.vectors, a.head_out, a.log_dir, a.run_dir, p, rt)
        if is_main():
            write_json(a.metrics, metrics)
    else:
        m = D.search(a.features, a.vectors, a.head, a.itos, a.emb, a.raw, a.index_dir, a.out_dir, p, rt)
        write_json(a.out_dir / "metrics.json", m)


if __name__ == "__main__":
    run_stage(main)
