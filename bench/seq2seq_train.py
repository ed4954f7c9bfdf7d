"""Seq2seq (French→English) training throughput: dlpipe's Seq2Seq on its Learner vs PyTorch's tutorial model.

Both sides train on the same padded batches of the real Multi30k training pairs (``prepare_pairs``
with the project's params: max 30 tokens a side; ``numericalize_splits`` per language, max_vocab
20,000, min_freq 2), bs 128, each batch padded to its own longest row, in the order of dlpipe's
``SortishSampler`` (seed 42), full teacher forcing, 2 threads, CPU.

dlpipe: ``Seq2Seq`` (emb 256, n_hid 256, 1 layer, unidirectional, attention: the tutorial's shape)
trained by the Learner as ``tasks.seq2seq.train.train_seq2seq`` builds it (``pair_data``,
``model_config``, ``make_loader`` + ``SortishSampler``, ``pair_collate``, ``seq_loss`` with label
smoothing 0.1, ``Optim(adamw(), seq2seq_splitter, wd 0.01, clip 1.0)``, ``TeacherForcing([1.0])``,
one-cycle at lr 3e-3): the params.yaml ``seq2seq`` values but for bidir. Peer: "NLP From Scratch:
Translation with a Sequence to Sequence Network and Attention" (EncoderRNN, BahdanauAttention,
AttnDecoderRNN, NLLLoss on log_softmax, two Adams at lr 1e-3) at equal sizes, in a plain loop over
a torch DataLoader of the same dataset and sampler (bench/peers/torch_tutorial_seq2seq.py).

target tokens/s = real (non-pad) target tokens of the timed batches ÷ the wall time from the end
of the last warm-up batch to the end of the last timed one (loader, forward, backward, step and,
for dlpipe, every callback). FLOPs per token: ``torch.utils.flop_counter`` over one more
forward + backward of the last timed batch (matmuls, the GRUs' included; elementwise ops are not).
Worker use: python -m bench.seq2seq_train SRC_IDS TGT_IDS BS EMB HID BATCHES WARMUP
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from bench.common import PROJECT_PY, RAW, BenchError, fmt_ratio, fmt_stat, human, ratio, run_worker, summarize

BS, EMB, HID, SEED = 128, 256, 256, 42
BATCHES = {False: (30, 3), True: (5, 1)}             # (timed, warm-up) batches per run
# params.yaml seq2seq.{prepare,numericalize,model,train}: the values train_seq2seq runs with
SPLITS = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
MAX_TOKENS, MAX_VOCAB, MIN_FREQ = 30, 20000, 2
LR, DIV, PCT_START, WD, CLIP, LABEL_SMOOTHING, DROPOUT = 3e-3, 25.0, 0.3, 0.01, 1.0, 0.1, 0.2
CACHE = RAW / "seq2seq"


def data_dirs() -> tuple[Path, Path]:
    """(French ids, English ids): prepare_pairs + numericalize_splits of the mirror's Multi30k, built once."""
    from dlpipe.core.atomic import atomic_dir
    from dlpipe.tasks.seq2seq.params import PrepareParams
    from dlpipe.tasks.seq2seq.prepare import prepare_pairs
    from dlpipe.text.vocab import NumericalizeParams, numericalize_splits
    ids = {lang: CACHE / "ids" / lang for lang in ("fr", "en")}
    if all((d / "itos.json").is_file() for d in ids.values()):
        return ids["fr"], ids["en"]
    src = Path(os.environ.get("DLPIPE_MIRROR", "/work/shared/data")) / "multi30k_en_fr"
    if not (src / "train.fr.gz").is_file():
        raise BenchError(f"{src}: no train.fr.gz: set DLPIPE_MIRROR to the data mirror")
    pairs = CACHE / "pairs"
    if not (pairs / "en" / "train" / "lengths.npy").is_file():
        prepare_pairs(src=src, out=pairs, p=PrepareParams(splits=SPLITS, holdout=0.05, max_tokens=MAX_TOKENS, max_train=None,
                                                          max_eval=None, seed=42))
    for lang, out in ids.items():
        with atomic_dir(out) as tmp:
            numericalize_splits(tok_dir=pairs / lang, out=tmp,
                                p=NumericalizeParams(max_vocab=MAX_VOCAB, min_freq=MIN_FREQ))
    return ids["fr"], ids["en"]


def batch_record(batches, stamps, losses, pad_idx: int) -> dict:
    """What both workers print: per-batch end times, real target tokens, padded decoder steps and
    source lengths, and a digest of the batches' ids (the runner checks both sides saw the same)."""
    h = hashlib.sha256()
    for src, tgt_in, tgt_out in batches:
        for t in (src, tgt_in, tgt_out):
            h.update(str(tuple(t.shape)).encode())
            h.update(t.numpy().tobytes())
    return {"batch_end_s": [s - stamps[0] for s in stamps], "tokens": [int((y != pad_idx).sum()) for *_, y in batches],
            "positions": [y.numel() for *_, y in batches], "src_len": [int(s.shape[1]) for s, *_ in batches],
            "digest": h.hexdigest()[:16], "loss": losses}


def flops_per_step(step) -> float:
    """FLOPs of one forward + backward (``step()`` runs it; the optimizer step is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        step()
    return float(fc.get_total_flops())


def dlpipe_worker(src: str, tgt: str, bs: int, emb: int, hid: int, n: int, warmup: int) -> None:
    import torch
    from dlpipe.core import runtime
    from dlpipe.core.runtime import RuntimeParams
    from dlpipe.core.stage import RunDirs
    from dlpipe.tasks.seq2seq import train as s2s      # the pieces train_seq2seq builds its run from, by its names
    from dlpipe.tasks.seq2seq.params import ModelParams, TrainParams
    from dlpipe.train import Callback, CancelFit, fit_phases

    class BatchClock(Callback):
        """End time of every training batch (after all other callbacks); stops the fit after ``total``."""
        order = 100

        def __init__(self, total: int):
            self.total, self.stamps, self.batches, self.losses = total, [], [], []

        def after_batch(self):
            learn = self.learn
            self.stamps.append(time.perf_counter())
            self.batches.append((*learn.xb, learn.yb[0]))
            self.losses.append(learn.loss_value)
            if len(self.stamps) >= self.total:
                raise CancelFit

    rt = RuntimeParams(device="cpu", num_threads=2, seed=SEED)
    runtime.apply(rt)                                                   # as train_seq2seq: threads, seeds
    m = ModelParams(emb_sz=emb, n_hid=hid, n_layers=1, bidir=False, attention=True, dropout=DROPOUT)
    p = TrainParams(bs=bs, epochs=1, lr=LR, div=DIV, pct_start=PCT_START, wd=WD, clip=CLIP,
                    label_smoothing=LABEL_SMOOTHING, teacher_forcing=[1.0], emb_init=None)
    clock = BatchClock(warmup + n)
    # train_seq2seq's own Learner (loaders, model, loss, optimizer, teacher forcing); the fit stops in epoch 1
    learn, _ = s2s.seq2seq_learner(Path(src), Path(tgt), m, p, rt, RunDirs(), cbs=[clock])
    net, cfg, train_ds = learn.model, learn.model.cfg, learn.train_dl.dataset
    loss_func = learn.loss_func
    fit_phases(learn, [s2s.Phase("train", 1, LR, sched_kwargs={"pct_start": PCT_START, "div": DIV})])
    s, t_in, t_out = clock.batches[-1]
    net.train()
    fl = flops_per_step(lambda: loss_func(net(s, t_in), t_out).backward())
    out = batch_record(clock.batches[warmup - 1:], clock.stamps[warmup - 1:], clock.losses, cfg.pad_idx)
    print(json.dumps({**out, "flops_last": fl, "n_params": sum(p.numel() for p in net.parameters()),
                      "n_train": len(train_ds), "src_vocab": cfg.src_vocab, "tgt_vocab": cfg.tgt_vocab,
                      "pr_force": net.pr_force, "threads": torch.get_num_threads()}), flush=True)


def per_run(res: dict) -> dict:
    """tokens/s, ms/batch and FLOPs/token of one worker's record (its first entry is the last warm-up batch)."""
    secs = res["batch_end_s"][-1]
    toks = sum(res["tokens"][1:])
    return {"tokens_per_s": toks / secs, "ms_per_batch": 1000 * secs / (len(res["batch_end_s"]) - 1),
            "tokens": toks, "positions": sum(res["positions"][1:]),
            "flops_per_token": res["flops_last"] / res["tokens"][-1]}


def run(peer_py, runs: int, quick: bool) -> dict:
    fr, en = data_dirs()
    n, warmup = BATCHES[quick]
    args = [str(a) for a in (fr, en, BS, EMB, HID, n, warmup)]
    cmds = {"dlpipe": [PROJECT_PY, "-m", "bench.seq2seq_train", *args],
            "tutorial": [PROJECT_PY, "bench/peers/torch_tutorial_seq2seq.py", *args]}
    recs = {impl: [] for impl in cmds}
    for r in range(runs):
        for impl, cmd in cmds.items():
            print(f"  seq2seq_train: run {r + 1}/{runs}: {impl}", flush=True)
            recs[impl].append(run_worker(cmd, RAW / "logs" / f"seq2seq_{impl}_{r}.log"))
    digests = {impl: {x["digest"] for x in v} for impl, v in recs.items()}
    if len(digests["dlpipe"] | digests["tutorial"]) != 1:
        raise BenchError(f"seq2seq_train: the two sides trained on different batches (digests {digests})")
    runs_ = {impl: [per_run(x) for x in v] for impl, v in recs.items()}
    st = {impl: {k: summarize([x[k] for x in v]) for k in ("tokens_per_s", "ms_per_batch")}
          for impl, v in runs_.items()}
    r_ = ratio(st["dlpipe"]["tokens_per_s"], st["tutorial"]["tokens_per_s"])
    d0, p0 = recs["dlpipe"][0], recs["tutorial"][0]
    first = runs_["dlpipe"][0]
    fpt = {impl: v[0]["flops_per_token"] for impl, v in runs_.items()}
    ms = lambda s: f"{s:.0f}"  # noqa: E731
    rows = [[label, fmt_stat(st[impl]["tokens_per_s"]), fmt_stat(st[impl]["ms_per_batch"], ms),
             fmt_ratio(ratio(st[impl]["tokens_per_s"], st["tutorial"]["tokens_per_s"])),
             f"{recs[impl][0]['n_params'] / 1e6:.2f}M", f"{fpt[impl] / 1e6:.1f}",
             human(st[impl]["tokens_per_s"]["median"] * fpt[impl] / 1e9)]
            for label, impl in (("dlpipe Seq2Seq + Learner", "dlpipe"), ("PyTorch tutorial, plain loop", "tutorial"))]
    return {"title": "Seq2seq (fr→en) GRU + attention training: dlpipe Learner vs the PyTorch tutorial (CPU)",
            "measured": {"target_tokens_per_s": {i: s["tokens_per_s"] for i, s in st.items()},
                         "ms_per_batch": {i: s["ms_per_batch"] for i, s in st.items()},
                         "ratio_dlpipe_tutorial": r_, "flops_per_token": fpt,
                         "n_params": {i: v[0]["n_params"] for i, v in recs.items()},
                         "timed_batches": n, "warmup_batches": warmup, "timed_tokens": first["tokens"],
                         "timed_decoder_positions": first["positions"], "batch_digest": d0["digest"],
                         "loss": {i: [x["loss"] for x in v] for i, v in recs.items()},
                         "n_train": d0["n_train"], "src_vocab": d0["src_vocab"], "tgt_vocab": d0["tgt_vocab"]},
            "notes": [f"Multi30k fr→en, {d0['n_train']:,} training pairs (≤ {MAX_TOKENS} tokens a side), "
                      f"vocabularies fr {d0['src_vocab']:,} / en {d0['tgt_vocab']:,} (max {MAX_VOCAB:,}, "
                      f"min_freq {MIN_FREQ}); bs {BS}, emb {EMB}, hidden {HID}, 1 GRU layer, unidirectional encoder, "
                      f"additive attention, {d0['threads']} threads, full teacher forcing (dlpipe pr_force "
                      f"{d0['pr_force']:g}).",
                      f"Both sides train on the same {n} timed batches after {warmup} warm-up batch(es) (dlpipe's "
                      f"SortishSampler order, seed {SEED}; digest {d0['digest']} on every run), each padded to its own "
                      f"longest row, not to the tutorial's fixed MAX_LENGTH: {first['tokens']:,} real target tokens in "
                      f"{first['positions']:,} decoder steps ({first['tokens'] / first['positions']:.0%} real). "
                      "tokens/s counts the real target tokens; ms/batch is the mean wall time per timed batch "
                      "(loader + forward + backward + step).",
                      "What differs (each side as written): dlpipe packs the encoder input, masks padded source "
                      "positions in the attention, projects the attention keys once per sentence (the tutorial's "
                      "`Ua(keys)` runs at every decoder step), maps the encoder's final state through a Linear+tanh "
                      "bridge, has a pre-output layer (Linear(hidden + context + emb → emb) + tanh) before a head "
                      "tied to the target embedding (the tutorial: an untied Linear(hidden → vocab)), dropout 0.2 on "
                      "embeddings and pre-output (tutorial 0.1 on embeddings), at pr_force 1 runs the tied head once "
                      "over all steps (one large matrix product; the tutorial: one per step), and trains with label-smoothed (0.1) cross-entropy, AdamW over "
                      "two parameter groups, decoupled weight decay 0.01, gradient clipping at 1.0 and a one-cycle "
                      "schedule, through the Learner's callbacks (Recorder, progress bar, TeacherForcing). The "
                      "tutorial: NLLLoss on log_softmax (here with ignore_index = xxpad: the tutorial's loss also "
                      "scores its zero padding), one Adam per module at lr 1e-3, no clipping, no schedule.",
                      "FLOPs/token: `torch.utils.flop_counter` over one forward + backward of the last timed batch ÷ "
                      "its real target tokens (matmuls, the GRUs' included), so the GFLOP/s column compares work "
                      "done, not just tokens.",
                      "Loss over the run's batches (a sanity check that both sides learn, not a result; dlpipe's "
                      f"one-cycle starts at lr {LR:g}/{DIV:g} and its loss is label-smoothed): dlpipe "
                      f"{d0['loss'][0]:.2f} → {d0['loss'][-1]:.2f}, tutorial {p0['loss'][0]:.2f} → "
                      f"{p0['loss'][-1]:.2f} (first run).",
                      f"{runs} interleaved run(s), each a fresh process."],
            "tables": [{"caption": "training target tokens/s",
                        "headers": ["loop", "target tokens/s", "ms/batch", "vs tutorial",
                                    "params", "MFLOP/token", "GFLOP/s"], "rows": rows}],
            "targets": []}


if __name__ == "__main__":
    a = sys.argv[1:]
    dlpipe_worker(a[0], a[1], *map(int, a[2:]))
