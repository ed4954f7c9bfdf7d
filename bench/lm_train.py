"""LM training throughput: dlpipe's AWD-LSTM vs fastai's, and the share of this machine's sgemm rate.

Both sides run the same loop (bench/peers/lm_loop.py: Adam, cross-entropy, bs 32, bptt 70,
2 threads, random ids) on identical configs and dropouts (fastai's awd_lstm_lm_config, drop_mult 1).
FLOPs are counted analytically per token: each LSTM layer 4·h·(n_in + h) MACs, the decoder
emb·vocab MACs; forward = 2 FLOPs per MAC, backward ≈ 2× forward, so a step = 3× forward.
Worker use: python -m bench.lm_train VOCAB EMB HID LAYERS BS BPTT STEPS WARMUP | --sgemm N
"""
from __future__ import annotations

import sys
import time

from bench.common import PROJECT_PY, RAW, fmt_ratio, fmt_stat, human, ratio, run_worker, summarize, target

BS, BPTT, VOCAB = 32, 70, 30000
# (label, emb, n_hid, layers, timed steps, warm-up steps)
CONFIGS = [("emb 200 / n_hid 512 / 2 layers", 200, 512, 2, 6, 1),
           ("emb 400 / n_hid 1152 / 3 layers (paper)", 400, 1152, 3, 3, 1)]
SGEMM_N = 4096


def lm_flops_per_token(vocab: int, emb: int, hid: int, layers: int) -> float:
    """Forward+backward FLOPs per token: LSTM gates + tied decoder (embedding lookups are free)."""
    sizes = [emb] + [hid] * (layers - 1) + [emb]
    macs = sum(4 * sizes[i + 1] * (sizes[i] + sizes[i + 1]) for i in range(layers)) + emb * vocab
    return 3 * 2 * macs


def sgemm_worker(n: int) -> None:
    import json
    import statistics
    import torch
    torch.set_num_threads(2)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up: MKL's first call allocates and picks kernels
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"gflops": 2 * n ** 3 / statistics.median(times) / 1e9}), flush=True)


def dlpipe_worker(argv) -> None:
    sys.path.insert(0, "bench/peers")
    from lm_loop import emit, main_args, time_steps
    from dlpipe.models.awd_lstm import AWDLSTMConfig, AWDLSTMLM
    vocab, emb, hid, layers, bs, bptt, steps, warmup = main_args(argv)
    model = AWDLSTMLM(AWDLSTMConfig.make(vocab, emb, hid, layers, drop_mult=1.0))
    emit(time_steps(model, vocab, bs, bptt, steps, warmup))


def _cmds(peer_py, emb, hid, layers, steps, warmup, quick) -> dict:
    args = [str(a) for a in (VOCAB, emb, hid, layers, BS, BPTT, 2 if quick else steps, 1 if quick else warmup)]
    return {"dlpipe": [PROJECT_PY, "-m", "bench.lm_train", *args],
            "fastai": [str(peer_py), "bench/peers/fastai_lm.py", *args]}


def run(peer_py, runs: int, quick: bool) -> dict:
    configs = CONFIGS[:1] if quick else CONFIGS
    tps = {c[0]: {"dlpipe": [], "fastai": []} for c in configs}
    gflops = []
    for r in range(runs):
        gflops.append(run_worker([PROJECT_PY, "-m", "bench.lm_train", "--sgemm", str(SGEMM_N)],
                                 RAW / "logs" / f"sgemm_{r}.log")["gflops"])
        for label, emb, hid, layers, steps, warmup in configs:
            for impl, cmd in _cmds(peer_py, emb, hid, layers, steps, warmup, quick).items():
                print(f"  lm_train: run {r + 1}/{runs}: {label}: {impl}", flush=True)
                res = run_worker(cmd, RAW / "logs" / f"lm_{impl}_{emb}_{r}.log")
                tps[label][impl].append(res["tokens_per_step"] / res["step_s"])
    peak = summarize(gflops)
    rows, targets, measured = [], [], {"sgemm_gflops": peak}
    for label, emb, hid, layers, *_ in configs:
        st = {impl: summarize(v) for impl, v in tps[label].items()}
        fpt = lm_flops_per_token(VOCAB, emb, hid, layers)
        share = {impl: st[impl]["median"] * fpt / 1e9 / peak["median"] for impl in st}
        r_ = ratio(st["dlpipe"], st["fastai"])
        measured[label] = {**st, "flops_per_token": fpt, "share_of_sgemm": share}
        rows.append([label, fmt_stat(st["dlpipe"]), fmt_stat(st["fastai"]), fmt_ratio(r_),
                     f"{st['dlpipe']['median'] * fpt / 1e9:.1f}", f"{share['dlpipe']:.0%}", f"{share['fastai']:.0%}"])
        targets.append(target(f"tokens/s dlpipe/fastai, {label}", r_, ">=", 1.0))
    return {"title": "4. AWD-LSTM language-model training (CPU)", "measured": measured,
            "notes": [f"vocab {VOCAB:,}, bs {BS}, bptt {BPTT}, Adam, 2 threads, fastai's LM dropouts (drop_mult 1); "
                      "tokens/s = bs·bptt / median step time (forward + backward + step) after warm-up steps.",
                      f"Machine ceiling: fp32 `torch.mm` {SGEMM_N}² at 2 threads = {fmt_stat(peak)} GFLOP/s. "
                      "Share = analytic FLOPs (LSTM 4·h·(n_in+h) + decoder emb·vocab MACs per token, ×2 FLOPs, ×3 "
                      "for forward+backward) × tokens/s ÷ that rate.",
                      f"{runs} interleaved run(s), each a fresh process; per-run medians of "
                      f"{', '.join(str(c[4]) for c in configs)} timed steps."],
            "tables": [{"caption": "tokens/s", "headers": ["config", "dlpipe", "fastai", "dlpipe/fastai",
                                                           "dlpipe GFLOP/s", "dlpipe share of sgemm",
                                                           "fastai share of sgemm"], "rows": rows}],
            "targets": targets}


if __name__ == "__main__":
    if sys.argv[1] == "--sgemm":
        sgemm_worker(int(sys.argv[2]))
    else:
        dlpipe_worker(sys.argv[1:])
