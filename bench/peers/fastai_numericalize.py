"""Peer: fastai 2.8.12 ``Numericalize`` (setup = count + make_vocab, then encode every document).

Usage: python bench/peers/fastai_numericalize.py TOKENS.jsonl REPEAT
Reads one JSON token list per line (loaded before timing), repeats the documents REPEAT times,
and prints one JSON line: {"setup_s", "encode_s", "seconds", "tokens", "vocab"}.
"""
import json
import sys
import time

from fastai.text.all import L, Numericalize


def main():
    path, repeat = sys.argv[1], int(sys.argv[2])
    docs = [json.loads(ln) for ln in open(path, encoding="utf-8")] * repeat
    t0 = time.perf_counter()
    num = Numericalize(min_freq=3, max_vocab=60000)
    num.setup(L(docs))
    t1 = time.perf_counter()
    ids = [num(d) for d in docs]
    t2 = time.perf_counter()
    print(json.dumps({"setup_s": t1 - t0, "encode_s": t2 - t1, "seconds": t2 - t0,
                      "tokens": sum(len(i) for i in ids), "vocab": len(num.vocab)}), flush=True)


if __name__ == "__main__":
    main()
