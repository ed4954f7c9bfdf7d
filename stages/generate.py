"""Sample continuations of the prompts in params from the fine-tuned forward IMDb LM.

Usage: python stages/generate.py --params params.yaml LM_DIR OUT_MD --metrics M.json
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dlpipe import params
from dlpipe.io.atomic import write_json
from dlpipe.tasks.imdb_lm import GenerateParams, RuntimeParams, generate_samples
from dlpipe.errors import run_stage


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lm", type=Path, help="fine-tuned forward LM directory")
    ap.add_argument("out", type=Path, help="samples.md")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--metrics", type=Path, required=True)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    a = parse(argv)
    p = params.load(GenerateParams, "imdb.generate", a.params)
    rt = params.load(RuntimeParams, "runtime", a.params)
    write_json(a.metrics, generate_samples(a.lm, a.out, p, rt))


if __name__ == "__main__":
    run_stage(main)
