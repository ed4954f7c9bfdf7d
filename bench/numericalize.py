"""Numericalization (tokens/s): dlpipe ``Vocab.build`` + ``numericalize`` vs fastai ``Numericalize``.

Both sides read the same token lists (fastai's tokens of the IMDb sample, which dlpipe's equal;
loaded before timing), repeated REPEAT times, with min_freq 3 and max_vocab 60,000 (fastai's
defaults). Timed: vocabulary build (count + sort) and encoding every document to ids.
Worker use: python -m bench.numericalize TOKENS.jsonl REPEAT
"""
from __future__ import annotations

import json
import sys
import time

from bench import corpora
from bench.common import PROJECT_PY, RAW, fmt_ratio, fmt_stat, human, ratio, run_worker, summarize, target

REPEAT = 10


def worker(path: str, repeat: int) -> None:
    from dlpipe.text.vocab import Vocab
    docs = [json.loads(ln) for ln in open(path, encoding="utf-8")] * repeat
    t0 = time.perf_counter()
    vocab = Vocab.build(docs, max_vocab=60000, min_freq=3)
    t1 = time.perf_counter()
    ids = [vocab.numericalize(d) for d in docs]
    t2 = time.perf_counter()
    print(json.dumps({"setup_s": t1 - t0, "encode_s": t2 - t1, "seconds": t2 - t0,
                      "tokens": sum(len(i) for i in ids), "vocab": len(vocab)}), flush=True)


def token_dump(peer_py) -> "Path":  # noqa: F821
    """fastai's tokens of IMDb ×1 (written by the tokenize bench; made here when absent)."""
    dump = RAW / "tokens_fastai_imdb_x1.jsonl"
    if not dump.is_file():
        src = corpora.imdb(1)
        run_worker([str(peer_py), "bench/peers/fastai_tokenize.py", "--case", f"{src}:2", "--dump", str(dump)],
                   RAW / "logs" / "num_dump.log")
    return dump


def run(peer_py, runs: int, quick: bool) -> dict:
    dump, repeat = token_dump(peer_py), 1 if quick else REPEAT
    cmds = {"dlpipe": [PROJECT_PY, "-m", "bench.numericalize", str(dump), str(repeat)],
            "fastai": [str(peer_py), "bench/peers/fastai_numericalize.py", str(dump), str(repeat)]}
    res = {k: [] for k in cmds}
    for r in range(runs):
        for impl, cmd in cmds.items():
            print(f"  numericalize: run {r + 1}/{runs}: {impl}", flush=True)
            res[impl].append(run_worker(cmd, RAW / "logs" / f"num_{impl}_{r}.log"))
    n_tok = res["dlpipe"][0]["tokens"]
    st = {impl: {k: summarize([x[k] for x in v]) for k in ("setup_s", "encode_s", "seconds")} for impl, v in res.items()}
    tps = {impl: summarize([n_tok / x["seconds"] for x in v]) for impl, v in res.items()}
    r_ = ratio(tps["dlpipe"], tps["fastai"])
    secs = lambda s: f"{s:.3g} s"  # noqa: E731
    rows = [[impl, human(n_tok), fmt_stat(tps[impl]), fmt_stat(st[impl]["setup_s"], secs),
             fmt_stat(st[impl]["encode_s"], secs), res[impl][0]["vocab"], fmt_ratio(ratio(tps[impl], tps["fastai"]))]
            for impl in ("dlpipe", "fastai")]
    return {"title": "3. Numericalization", "measured": {"tokens_per_s": tps, "seconds": st, "tokens": n_tok},
            "notes": [f"Tokens: fastai's tokens of the IMDb sample ×{repeat} (identical to dlpipe's, see section 1), "
                      "held in memory before timing; min_freq 3, max_vocab 60,000.",
                      "Vocabulary sizes differ by fastai's `xxfake` padding to a multiple of 8.",
                      f"{runs} interleaved run(s), each in a fresh process."],
            "tables": [{"caption": "tokens/s (vocabulary build + encode)",
                        "headers": ["impl", "tokens", "tokens/s", "vocab build", "encode", "vocab size", "vs fastai"],
                        "rows": rows}],
            "targets": [target("tokens/s dlpipe/fastai", r_, ">=", 1.0)]}


if __name__ == "__main__":
    worker(sys.argv[1], int(sys.argv[2]))
