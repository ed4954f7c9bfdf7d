"""CIFAR-10 Darknet training throughput: dlpipe's Learner vs fastai's, and the share of this machine's sgemm rate.

Both sides train the same network (dlpipe's lesson-12 Darknet, nf 16, groups [1, 2, 2], the
sample-scale ``cifar.model``) on the same decoded images (``decode_cifar`` on a capped subset of
the mirror's cifar10_jpg) with the same per-image pipeline (dlpipe's ``ImageArrayDataset``:
normalise, 4 px pad-and-crop, flip), bs 128, channels-last, label-smoothed cross-entropy, SGD
with decoupled weight decay and a one-cycle schedule (div 25, pct_start 0.25, momentum
0.95→0.85), 2 threads. dlpipe: ``tasks.cifar.train.cifar_learner`` + ``fit_phases``, what
``train_cifar`` runs (classical momentum here: fastai's SGD has no Nesterov). fastai 2.8.12:
``Learner`` + ``fit_one_cycle`` over fastai ``DataLoader``s of the same dataset
(bench/peers/fastai_cifar.py). So the ratio measures the loop, loaders and callbacks, not the math.

images/s = training images ÷ the training part of the last epoch (validation excluded; the first
epoch warms up oneDNN's kernels). FLOPs per image are counted by ``torch.utils.flop_counter``
over one forward + backward (convolutions and matmuls; BN and activations are not counted, so the
share of sgemm is a floor).
Worker use: python -m bench.cifar_train SRC EPOCHS
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from bench.common import PROJECT_PY, RAW, BenchError, fmt_ratio, fmt_stat, run_worker, summarize, target

NF, LAYERS, BS, LR, WD = 16, (1, 2, 2), 128, 0.2, 5e-3
PER_CLASS = {False: 640, True: 128}     # images per class and split: 6,400 (quick: 1,280) to train on
EPOCHS = {False: 2, True: 1}
SGEMM_N = 4096


def data_dir(per_class: int) -> Path:
    """decode_cifar's arrays for ``per_class`` images per class and split, built once from the mirror."""
    out = RAW / "cifar" / f"per_class_{per_class}"
    if (out / "train_labels.npy").is_file():
        return out
    from dlpipe.tasks.cifar.decode import decode_cifar
    from dlpipe.tasks.cifar.params import DecodeParams
    src = Path(os.environ.get("DLPIPE_MIRROR", "/work/shared/data")) / "cifar10_jpg"
    archives = sorted(src.glob("*.tar.gz"))
    if not archives:
        raise BenchError(f"{src}: no cifar10_jpg archive: set DLPIPE_MIRROR to the data mirror")
    tmp = out.with_name(out.name + ".tmp")
    decode_cifar(src=archives[0], out=tmp, p=DecodeParams(seed=0, max_per_class=per_class))
    tmp.replace(out)
    return out


def flops_per_image() -> float:
    """Forward + backward FLOPs of one training image through the Darknet (conv/matmul only)."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode
    from dlpipe.models.darknet import DarknetConfig, darknet
    net = darknet(DarknetConfig(in_ch=3, nf=NF, layers=LAYERS, n_classes=10))
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(net(x), y).backward()
    return fc.get_total_flops() / 8


def dlpipe_worker(src: str, epochs: int) -> None:
    import torch
    from dlpipe.core.runtime import RuntimeParams
    from dlpipe.core.stage import RunDirs
    from dlpipe.tasks.cifar.params import DataParams, ModelParams
    from dlpipe.tasks.cifar.train import cifar_learner
    from dlpipe.train import EpochTimer, Optim, Phase, fit_phases, sgd
    torch.set_num_threads(2)
    timer = EpochTimer()
    learn, a, _ = cifar_learner(Path(src), ModelParams(nf=NF, layers=list(LAYERS)),
                                DataParams(bs=BS, pad=4, flip=True, channels_last=True, label_smoothing=0.1),
                                Optim(opt_func=sgd(0.95, nesterov=False), wd=WD),
                                RuntimeParams(device="cpu", num_threads=2, seed=0), RunDirs(), "bench", cbs=[timer])
    fit_phases(learn, [Phase("train", epochs, LR, sched_kwargs={"pct_start": 0.25, "div": 25.0, "div_final": 1e4,
                                                                 "moms": (0.95, 0.85)})])
    secs = timer.times["train"]
    print(json.dumps({"epoch_s": secs, "n_train": len(a["train_labels"]),
                      "images_per_s": len(a["train_labels"]) / secs[-1],
                      "accuracy": learn.recorder.rows[-1]["accuracy"]}), flush=True)


def run(peer_py, runs: int, quick: bool) -> dict:
    src = data_dir(PER_CLASS[quick])
    epochs = EPOCHS[quick]
    ips = {"dlpipe": [], "fastai": []}
    acc = {"dlpipe": [], "fastai": []}
    gflops = []
    cmds = {"dlpipe": [PROJECT_PY, "-m", "bench.cifar_train", str(src), str(epochs)],
            "fastai": [str(peer_py), "bench/peers/fastai_cifar.py", str(src), str(epochs)]}
    for r in range(runs):
        gflops.append(run_worker([PROJECT_PY, "-m", "bench.lm_train", "--sgemm", str(SGEMM_N)],
                                 RAW / "logs" / f"sgemm_cifar_{r}.log")["gflops"])
        for impl, cmd in cmds.items():
            print(f"  cifar_train: run {r + 1}/{runs}: {impl}", flush=True)
            res = run_worker(cmd, RAW / "logs" / f"cifar_{impl}_{r}.log")
            ips[impl].append(res["images_per_s"])
            acc[impl].append(res["accuracy"])
    st = {impl: summarize(v) for impl, v in ips.items()}
    peak = summarize(gflops)
    fpi = flops_per_image()
    share = {impl: st[impl]["median"] * fpi / 1e9 / peak["median"] for impl in st}
    r_ = st["dlpipe"]["median"] / st["fastai"]["median"]
    n = PER_CLASS[quick] * 10
    return {"title": "CIFAR-10 Darknet training: dlpipe Learner vs fastai (CPU)",
            "measured": {**st, "sgemm_gflops": peak, "flops_per_image": fpi, "share_of_sgemm": share,
                         "accuracy_after": acc, "n_train": n, "epochs": epochs},
            "notes": [f"Darknet nf {NF}, groups {list(LAYERS)}, {n:,} training images (decode_cifar, "
                      f"{PER_CLASS[quick]} per class), bs {BS}, {epochs} one-cycle epoch(s) at peak lr {LR}, "
                      "channels-last, 2 threads; images/s over the training part of the last epoch.",
                      f"Machine ceiling: fp32 `torch.mm` {SGEMM_N}² at 2 threads = {fmt_stat(peak)} GFLOP/s; "
                      f"one image forward + backward = {fpi / 1e6:.1f} MFLOP (torch.utils.flop_counter, conv and "
                      "matmul only); share = FLOPs × images/s ÷ that rate (a floor: BatchNorm and activations "
                      "are not counted).",
                      f"Test accuracy on the {n:,} capped test images after the run (a sanity check that both sides "
                      f"learn, not a result): dlpipe {', '.join(f'{a:.3f}' for a in acc['dlpipe'])}; fastai "
                      f"{', '.join(f'{a:.3f}' for a in acc['fastai'])}.",
                      f"{runs} interleaved run(s), each a fresh process."],
            "tables": [{"caption": "training images/s", "headers": ["loop", "images/s", "dlpipe/fastai",
                                                                    "share of sgemm"],
                        "rows": [["dlpipe Learner", fmt_stat(st["dlpipe"]), fmt_ratio(r_), f"{share['dlpipe']:.0%}"],
                                 ["fastai 2.8.12 Learner", fmt_stat(st["fastai"]), "1.00×",
                                  f"{share['fastai']:.0%}"]]}],
            "targets": [target("CIFAR images/s dlpipe/fastai", r_, ">=", 1.0)]}


if __name__ == "__main__":
    dlpipe_worker(sys.argv[1], int(sys.argv[2]))
