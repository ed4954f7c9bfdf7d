"""Peer: fastai 2.8.12 tokenization (rules + SpacyTokenizer) of label,text CSVs; runs in bench/.peers/venv.

Usage: python bench/peers/fastai_tokenize.py --case CSV:N_WORKERS [--case ...] [--dump OUT.jsonl]
Times, per case, CSV -> pd.read_csv -> ``tokenize_texts(texts, n_workers)`` (fastai's defaults:
``defaults.text_proc_rules``, ``defaults.text_postproc_rules``, ``SpacyTokenizer``). Prints one JSON
line: {"cases": {"CSV:N": {"seconds", "docs", "tokens"}}}. ``--dump`` writes the first case's
token lists (one JSON list per line) after timing, for the identical-documents comparison.
"""
import argparse
import json
import time

import pandas as pd
from fastai.text.all import defaults, tokenize_texts


def read_texts(csv_path):
    # dtype=str + keep_default_na=False: a review reading "NA" or "null" stays text, as in dlpipe
    df = pd.read_csv(csv_path, header=None, dtype=str, keep_default_na=False)
    return df.iloc[:, 1].tolist()


def run_case(spec):
    csv_path, n = spec.rsplit(":", 1)
    t0 = time.perf_counter()
    toks = tokenize_texts(read_texts(csv_path), n_workers=int(n), rules=defaults.text_proc_rules)
    secs = time.perf_counter() - t0
    return toks, {"seconds": secs, "docs": len(toks), "tokens": sum(len(t) for t in toks)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", action="append", required=True)
    ap.add_argument("--dump")
    args = ap.parse_args()
    cases = {}
    for i, spec in enumerate(args.case):
        toks, cases[spec] = run_case(spec)
        if args.dump and i == 0:
            with open(args.dump, "w", encoding="utf-8") as fh:
                for t in toks:
                    fh.write(json.dumps(list(t), ensure_ascii=False) + "\n")
        del toks
    print(json.dumps({"cases": cases}), flush=True)


if __name__ == "__main__":
    main()
