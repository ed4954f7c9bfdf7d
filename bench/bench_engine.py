"""Training throughput of the Learner (with its progress bar and default callbacks) vs a bare loop.

Both train the same MLP on the same batches with the same math: AdamW-style decoupled weight
decay, gradient clipping, a one-cycle lr/momentum schedule. Runs alternate (learner, bare, ...)
so background load hits both alike. Prints median and min-max samples/s and the overhead ratio
(bare / learner; 1.00 = no overhead), and writes bench/results/engine.json.

Usage (from the repo root): python -m bench.bench_engine [--runs 5] [--epochs 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from dlpipe.core.atomic import write_json
from dlpipe.train import Learner, Optim, RunSettings, adamw, make_loader
from dlpipe.train.param_groups import set_mom
from dlpipe.train.schedules import one_cycle

N, N_IN, N_HID, N_OUT, BS, LR, WD, CLIP = 8192, 64, 256, 10, 64, 3e-3, 0.01, 1.0


def setup(seed: int = 0):
    torch.manual_seed(seed)
    x = torch.randn(N, N_IN)
    y = (x[:, :N_OUT] + 0.5 * torch.randn(N, N_OUT)).argmax(1)
    dl = make_loader(TensorDataset(x, y), BS, shuffle=True, seed=seed)
    model = nn.Sequential(nn.Linear(N_IN, N_HID), nn.ReLU(), nn.Linear(N_HID, N_HID), nn.ReLU(), nn.Linear(N_HID, N_OUT))
    return model, dl


def run_learner(epochs: int) -> float:
    model, dl = setup()
    learn = Learner(model, dl, None, nn.CrossEntropyLoss(), optim=Optim(opt_func=adamw(), wd=WD, clip=CLIP),
                    run=RunSettings(device="cpu"))
    t = time.perf_counter()
    learn.fit(epochs, LR, schedule="one_cycle")
    return epochs * N / (time.perf_counter() - t)


def run_bare(epochs: int) -> float:
    """The hand-written loop: what the Learner does, minus events, recording and progress."""
    model, dl = setup()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.99), eps=1e-6, weight_decay=WD)
    loss_func = nn.CrossEntropyLoss()
    total = epochs * len(dl)
    t = time.perf_counter()
    for epoch in range(epochs):
        dl.set_epoch(epoch)
        for i, (xb, yb) in enumerate(dl):
            mult, mom = one_cycle((epoch * len(dl) + i) / total)
            for g in opt.param_groups:
                g["lr"] = LR * mult
                set_mom(g, mom)
            opt.zero_grad(set_to_none=True)
            loss = loss_func(model(xb), yb)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
    return epochs * N / (time.perf_counter() - t)


def summary(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": xs}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "engine.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run_bare(1), run_learner(1)                        # warm-up: allocator, lazy imports
    learner, bare = [], []
    for _ in range(args.runs):
        learner.append(run_learner(args.epochs))
        bare.append(run_bare(args.epochs))
    res = {"task": f"MLP {N_IN}-{N_HID}-{N_HID}-{N_OUT}, bs {BS}, {N} samples x {args.epochs} epochs, CPU, "
                   f"{args.threads} thread(s); samples/s",
           "learner": summary(learner), "bare_loop": summary(bare),
           "overhead_ratio": statistics.median(bare) / statistics.median(learner)}
    for name in ("learner", "bare_loop"):
        s = res[name]
        print(f"{name:10s} median {s['median']:9.0f} samples/s  (min {s['min']:.0f} – max {s['max']:.0f}, {args.runs} runs)")
    print(f"overhead ratio (bare / learner): {res['overhead_ratio']:.3f}")
    write_json(args.out, res)
    return res


if __name__ == "__main__":
    main()
