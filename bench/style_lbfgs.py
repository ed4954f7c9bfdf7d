"""Gatys style transfer (CPU): L-BFGS evaluations per second, dlpipe's loss network + objective vs PyTorch's
neural-style tutorial, at equal size and on the same network.

dlpipe: ``dlpipe.vision.loss_network.load_loss_network("random_vgg:vgg19", ...)`` tapped at VGG19's conv
layers the tutorial uses (content conv_4 = ``features.7``, style conv_1..5 = ``features.0/2/5/7/10``;
taps after the convs, as the tutorial's losses are), the normalised objective of ``dlpipe.vision.style``
and ``lbfgs_pixels`` — what ``gatys`` runs. Peer: bench/peers/torch_tutorial_style.py, the tutorial's
Sequential with ContentLoss/StyleLoss modules and its LBFGS closure. Both: seeded noise content and style
images of SIZE x SIZE, random VGG19 weights (ImageNet's cannot be fetched), 2 threads; evaluations/s
after the warm-up evaluations (one forward + backward through the network each).
Worker use: python -m bench.style_lbfgs SIZE EVALS WARMUP SEED
"""
from __future__ import annotations

import json
import sys
import time

from bench.common import PROJECT_PY, RAW, fmt_ratio, fmt_stat, ratio, run_worker, summarize

SIZE, SEED = 192, 0
EVALS = {False: (40, 5), True: (5, 2)}
LAYERS = ["features.0", "features.2", "features.5", "features.7", "features.10"]    # VGG19 conv_1 ... conv_5


def worker(a: list[str]) -> None:
    import torch

    from dlpipe.vision.loss_network import load_loss_network
    from dlpipe.vision.style import lbfgs_pixels, objective

    size, evals, warmup, seed = map(int, a[:4])
    torch.set_num_threads(2)
    net = load_loss_network("random_vgg:vgg19", None, LAYERS, seed=seed)
    g = torch.Generator().manual_seed(seed)
    content, style = torch.rand(1, 3, size, size, generator=g), torch.rand(1, 3, size, size, generator=g)
    obj = objective(net, content, style, [0, 0, 0, 1, 0], [1, 1, 1, 1, 1])
    stamps = []
    terms = obj.terms

    def timed_terms(x):
        out = terms(x)
        stamps.append(time.perf_counter())
        return out

    obj.terms = timed_terms
    lbfgs_pixels(obj, content, 1.0, 10.0, warmup + evals, history_size=100, desc="bench")
    t = stamps[warmup - 1:]
    print(json.dumps({"evals_per_s": (len(t) - 1) / (t[-1] - t[0]), "evals": len(stamps)}), flush=True)


def run(peer_py, runs: int, quick: bool) -> dict:
    evals, warmup = EVALS[quick]
    args = [str(v) for v in (SIZE, evals, warmup, SEED)]
    cmds = {"dlpipe": [PROJECT_PY, "-m", "bench.style_lbfgs", *args],
            "tutorial": [PROJECT_PY, "bench/peers/torch_tutorial_style.py", *args]}
    recs = {k: [] for k in cmds}
    for r in range(runs):
        for impl, cmd in cmds.items():
            print(f"  style_lbfgs: run {r + 1}/{runs}: {impl}", flush=True)
            recs[impl].append(run_worker(cmd, RAW / "logs" / f"style_lbfgs_{impl}_{r}.log"))
    eps = {k: summarize([x["evals_per_s"] for x in v]) for k, v in recs.items()}
    labels = {"dlpipe": "dlpipe: loss network (graph taps) + normalised objective + lbfgs_pixels",
              "tutorial": "PyTorch neural-style tutorial (Sequential + loss modules + LBFGS closure)"}
    rows = [[labels[k], fmt_stat(eps[k]), fmt_ratio(ratio(eps[k], eps["tutorial"]))] for k in cmds]
    return {"title": "Gatys style transfer: L-BFGS evaluations/s, dlpipe vs PyTorch's neural-style tutorial (CPU)",
            "measured": {"evals_per_s": eps, "ratio_dlpipe_tutorial": ratio(eps["dlpipe"], eps["tutorial"])},
            "notes": [f"{SIZE} x {SIZE} content and style (seeded noise), VGG19 with random seeded weights on both "
                      "sides, content conv_4, style conv_1..5 (the tutorial's layers), 2 threads; "
                      f"{evals} timed evaluations after {warmup} warm-up.",
                      f"{runs} interleaved run(s), each a fresh process."],
            "tables": [{"caption": "L-BFGS loss evaluations per second (forward + backward each)",
                        "headers": ["implementation", "evaluations/s", "vs tutorial"], "rows": rows}],
            "targets": []}


if __name__ == "__main__":
    worker(sys.argv[1:])
