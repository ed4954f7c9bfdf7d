"""Tokenization: dlpipe (rules + spaCy, ``tokenize_csv``) vs fastai vs the raw spaCy tokenizer.

Each case times CSV file -> tokens (reading the CSV is inside the timing for every side).
- dlpipe: ``dlpipe.text.tokenize.tokenize_csv`` (the stage's own call; also writes the token store)
- fastai: ``pd.read_csv`` + ``tokenize_texts(texts, n_workers)`` (bench/peers/fastai_tokenize.py)
- ceiling: ``spacy.blank("en").tokenizer.pipe`` with no rules, token texts as lists; at 2 workers
  a fork Pool over 1,000-document chunks.
Worker use (one JSON line on stdout):
    python -m bench.tokenize --impl dlpipe|spacy --case CSV:N_WORKERS [--case ...] [--dump OUT.jsonl]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

from bench import corpora
from bench.common import (PROJECT_PY, RAW, fmt_ratio, fmt_stat, human, ratio, run_worker,
                          summarize, target)

CHUNK = 1000          # docs per spaCy pipe batch / per pool task for the ceiling
IMDB_SPEED_REPEAT = 3  # throughput on IMDb x3 (x10 only for memory: a fastai x10 run is ~1 min)
_TOK = None


# ---- worker side (project venv) -----------------------------------------------------------------

def _chunk_size() -> int:
    """The pipeline's own imdb.tokenize.chunk_size when params.yaml has it, else CHUNK."""
    from dlpipe.core.params import read_yaml
    from bench.common import ROOT
    sec = read_yaml(ROOT / "params.yaml").get("imdb") or {}
    return int((sec.get("tokenize") or {}).get("chunk_size", CHUNK))


def _dlpipe_case(csv_path: str, n: int, dump: str | None) -> dict:
    from dlpipe.text.corpus import iter_token_docs
    from dlpipe.text.tokenize import TokenizeParams, tokenize_csv
    with tempfile.TemporaryDirectory(dir=RAW) as tmp:
        t0 = time.perf_counter()
        m = tokenize_csv(csv_path, Path(tmp) / "tok", TokenizeParams(n_workers=n, chunk_size=_chunk_size()))
        secs = time.perf_counter() - t0
        if dump:
            _dump(dump, iter_token_docs(Path(tmp) / "tok"))
    return {"seconds": secs, "docs": m["docs"], "tokens": m["tokens"]}


def _spacy_init() -> None:
    global _TOK
    import spacy
    _TOK = spacy.blank("en").tokenizer


def _spacy_chunk(texts: list[str]) -> list[list[str]]:
    return [[t.text for t in doc] for doc in _TOK.pipe(texts, batch_size=CHUNK)]


def _spacy_case(csv_path: str, n: int, dump: str | None) -> dict:
    t0 = time.perf_counter()
    texts = corpora.read_texts(Path(csv_path))
    chunks = [texts[i:i + CHUNK] for i in range(0, len(texts), CHUNK)]
    if n == 1:
        _spacy_init()
        toks = [d for c in chunks for d in _spacy_chunk(c)]
    else:
        with multiprocessing.get_context("fork").Pool(n, initializer=_spacy_init) as pool:
            toks = [d for c in pool.imap(_spacy_chunk, chunks) for d in c]
    secs = time.perf_counter() - t0
    if dump:
        _dump(dump, toks)
    return {"seconds": secs, "docs": len(toks), "tokens": sum(len(t) for t in toks)}


def _dump(path: str, docs) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for toks in docs:
            fh.write(json.dumps(list(toks), ensure_ascii=False) + "\n")


def worker(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=("dlpipe", "spacy"), required=True)
    ap.add_argument("--case", action="append", required=True)
    ap.add_argument("--dump")
    args = ap.parse_args(argv)
    fn = _dlpipe_case if args.impl == "dlpipe" else _spacy_case
    cases = {}
    for i, spec in enumerate(args.case):
        path, n = spec.rsplit(":", 1)
        cases[spec] = fn(path, int(n), args.dump if i == 0 else None)
    print(json.dumps({"cases": cases}), flush=True)


# ---- runner side ------------------------------------------------------------------------------

def _cmd(impl: str, peer_py, cases: list[str], dump: Path | None = None) -> list[str]:
    extra = ["--dump", str(dump)] if dump else []
    case_args = [a for c in cases for a in ("--case", c)]
    if impl == "fastai":
        return [str(peer_py), "bench/peers/fastai_tokenize.py", *case_args, *extra]
    return [PROJECT_PY, "-m", "bench.tokenize", "--impl", impl, *case_args, *extra]


IMPLS = ("dlpipe", "fastai", "spacy")


def _throughput(peer_py, cases: dict[str, str], runs: int) -> dict:
    """{impl: {label: [seconds per run]}}, the three implementations interleaved in each round."""
    secs = {impl: {label: [] for label in cases} for impl in IMPLS}
    for r in range(runs):
        for impl in IMPLS:
            print(f"  tokenize: round {r + 1}/{runs}: {impl}", flush=True)
            res = run_worker(_cmd(impl, peer_py, list(cases.values())), RAW / "logs" / f"tok_{impl}_{r}.log")
            for label, spec in cases.items():
                secs[impl][label].append(res["cases"][spec]["seconds"])
    return secs


def _memory(peer_py, csv_path: Path, runs: int) -> dict:
    """{impl: {"rss": stat, "seconds": stat}} at 2 workers, one process per run."""
    raw = {impl: {"rss": [], "pss": [], "seconds": []} for impl in ("dlpipe", "fastai")}
    for r in range(runs):
        for impl in raw:
            print(f"  tokenize memory {csv_path.stem}: run {r + 1}/{runs}: {impl}", flush=True)
            res = run_worker(_cmd(impl, peer_py, [f"{csv_path}:2"]), RAW / "logs" / f"mem_{impl}_{csv_path.stem}_{r}.log")
            raw[impl]["rss"].append(res["peak_rss"])
            raw[impl]["pss"].append(res["peak_pss"])
            raw[impl]["seconds"].append(res["cases"][f"{csv_path}:2"]["seconds"])
    return {impl: {k: summarize(v) for k, v in d.items()} for impl, d in raw.items()}


def _identical(peer_py, corpus: dict[str, Path]) -> dict:
    """Per corpus: dlpipe's and fastai's token lists per document, compared; diffs kept."""
    out = {}
    for label, path in corpus.items():
        docs = {}
        for impl in ("dlpipe", "fastai"):
            dump = RAW / f"tokens_{impl}_{path.stem}.jsonl"
            run_worker(_cmd(impl, peer_py, [f"{path}:2"], dump), RAW / "logs" / f"dump_{impl}_{path.stem}.log")
            docs[impl] = [json.loads(ln) for ln in open(dump, encoding="utf-8")]
        pairs = list(zip(docs["dlpipe"], docs["fastai"]))
        if len(docs["dlpipe"]) != len(docs["fastai"]):
            raise RuntimeError(f"{label}: dlpipe gave {len(docs['dlpipe'])} docs, fastai {len(docs['fastai'])}")
        diff_idx = [i for i, (a, b) in enumerate(pairs) if a != b]
        out[label] = {"docs": len(pairs), "identical": len(pairs) - len(diff_idx),
                      "share": 1 - len(diff_idx) / max(len(pairs), 1),
                      "diffs": [_diff(i, b, a) for i, (a, b) in ((i, pairs[i]) for i in diff_idx[:12])]}
    return out


def _diff(i: int, fa: list[str], dl: list[str]) -> dict:
    """The first few differing spans of one document (fastai = a, dlpipe = b), with context."""
    import difflib
    ops = [op for op in difflib.SequenceMatcher(a=fa, b=dl, autojunk=False).get_opcodes() if op[0] != "equal"]
    spans = [{"op": tag, "fastai": fa[i1:i2][:12], "dlpipe": dl[j1:j2][:12],
              "context": " ".join(fa[max(0, i1 - 6):i1])} for tag, i1, i2, j1, j2 in ops[:3]]
    return {"doc": i, "n_ops": len(ops), "spans": spans}


def write_diffs(ident: dict, dest: Path) -> None:
    """bench/results/tokenize_diffs.md: where dlpipe's tokens differ from fastai's, for the tokenizer."""
    from dlpipe.core.atomic import write_text
    lines = ["# Tokenization differences: dlpipe vs fastai 2.8.12", "",
             "Generated by `.venv/bin/python -m bench.run --only tokenize`. For each corpus, up to 12 "
             "documents whose token lists differ; per document the first 3 differing spans "
             "(`context` = the fastai tokens just before the span).", ""]
    for label, d in ident.items():
        lines += [f"## {label}: {d['identical']}/{d['docs']} documents identical ({d['share']:.2%})", ""]
        for df in d["diffs"]:
            lines.append(f"- doc {df['doc']} ({df['n_ops']} differing span(s))")
            for s in df["spans"]:
                lines.append(f"  - {s['op']} after `…{s['context'][-60:]}`: fastai `{s['fastai']}` → dlpipe `{s['dlpipe']}`")
        lines.append("")
    write_text(dest, "\n".join(lines) + "\n")


def _wps(words: int, secs: list[float]) -> dict:
    return summarize([words / s for s in secs])


def run(peer_py, runs: int, quick: bool) -> dict:
    """Throughput, identical-document share and memory; returns the result payload."""
    imdb_k = 1 if quick else IMDB_SPEED_REPEAT
    paths = {f"IMDb ×{imdb_k}": corpora.imdb(imdb_k), "WikiText-2 valid+test": corpora.wiki()}
    words = {label: corpora.count_words(p) for label, p in paths.items()}
    cases = {(label, n): f"{p}:{n}" for label, p in paths.items() for n in (1, 2)}
    secs = _throughput(peer_py, {f"{lab}|{n}": spec for (lab, n), spec in cases.items()}, runs)
    speed_rows, targets, measured = [], [], {}
    for (label, n) in cases:
        st = {impl: _wps(words[label], secs[impl][f"{label}|{n}"]) for impl in IMPLS}
        vs_fa, vs_sp = ratio(st["dlpipe"], st["fastai"]), ratio(st["dlpipe"], st["spacy"])
        measured[f"{label}, {n} worker(s)"] = {**st, "words": words[label]}
        speed_rows.append([label, n, human(words[label]), fmt_stat(st["dlpipe"]), fmt_stat(st["fastai"]),
                           fmt_stat(st["spacy"]), fmt_ratio(vs_fa), fmt_ratio(vs_sp)])
        targets += [target(f"words/s vs fastai, {label}, {n}w", vs_fa, ">=", 3.0),
                    target(f"words/s vs raw spaCy, {label}, {n}w", vs_sp, ">=", 0.6)]
    ident = _identical(peer_py, {"IMDb ×1": corpora.imdb(1), "WikiText-2 valid+test": corpora.wiki()})
    write_diffs(ident, RAW.parent / "tokenize_diffs.md")
    targets += [target(f"identical docs, {k}", d["share"], ">=", 0.995) for k, d in ident.items()]
    mem_sets = {"IMDb ×1": (corpora.imdb(1), runs)} if quick else \
        {"IMDb ×1": (corpora.imdb(1), runs), "IMDb ×10": (corpora.imdb(10), 1)}
    mem_rows = []
    for label, (path, n_runs) in mem_sets.items():
        m = _memory(peer_py, path, n_runs)
        r = ratio(m["dlpipe"]["rss"], m["fastai"]["rss"])
        w = corpora.count_words(path)
        measured[f"memory {label}"] = m
        mb = lambda x: f"{x / 2**20:,.0f} MiB"  # noqa: E731
        mem_rows.append([label, n_runs, fmt_stat(m["dlpipe"]["rss"], mb), fmt_stat(m["fastai"]["rss"], mb), fmt_ratio(r),
                         fmt_stat(m["dlpipe"]["pss"], mb), fmt_stat(m["fastai"]["pss"], mb),
                         human(w / m["dlpipe"]["seconds"]["median"]), human(w / m["fastai"]["seconds"]["median"])])
        targets.append(target(f"peak RSS dlpipe/fastai, {label}, 2w", r, "<=", 1.2))
    return {"title": "1–2. Tokenization: throughput, fidelity, memory", "measured": measured,
            "identical": {k: {x: v[x] for x in ("docs", "identical", "share")} for k, v in ident.items()},
            "notes": [f"words = whitespace-split words of the input texts; timing covers CSV file → tokens for every side; "
                      f"dlpipe `tokenize_csv` (chunk_size {_chunk_size()}, also writes its token store), fastai "
                      "`pd.read_csv` + `tokenize_texts(n_workers)`, raw spaCy `spacy.blank('en').tokenizer.pipe` (no rules).",
                      f"Throughput on IMDb ×{imdb_k} (the ×10 corpus is used for memory; one fastai ×10 run takes ~1 min), "
                      f"{runs} interleaved run(s) per cell.",
                      "Peak memory = sum over the process tree (parent + workers), polled every 20 ms (PSS every 100 ms); "
                      "fastai forks its workers (shared pages count twice in RSS), dlpipe spawns them.",
                      "Differences per document: bench/results/tokenize_diffs.md."],
            "tables": [{"caption": "words/s", "headers": ["corpus", "workers", "words", "dlpipe", "fastai", "raw spaCy",
                                                           "dlpipe/fastai", "dlpipe/spaCy"], "rows": speed_rows},
                       {"caption": "documents whose tokens equal fastai's",
                        "headers": ["corpus", "docs", "identical", "share"],
                        "rows": [[k, d["docs"], d["identical"], f"{d['share']:.2%}"] for k, d in ident.items()]},
                       {"caption": "peak memory of the process tree at 2 workers",
                        "headers": ["corpus", "runs", "dlpipe RSS", "fastai RSS", "RSS ratio", "dlpipe PSS", "fastai PSS",
                                    "dlpipe words/s", "fastai words/s"], "rows": mem_rows}],
            "targets": targets}


if __name__ == "__main__":
    worker()
