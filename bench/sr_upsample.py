"""Super-resolution upsampling (CPU): pixel shuffle with ICNR init (dlpipe's EDSR) vs transposed convolution,
at equal parameter count — training speed and the quality a fixed budget of steps reaches.

Both networks are train_superres's x2 EDSR (nf 32, 6 residual blocks, bicubic shortcut, zero-initialised
tail); only the upsampling layer differs:

* ``shuffle``: conv3x3 nf -> 4 nf (ICNR init) + PixelShuffle(2) — 36 nf^2 + 4 nf parameters;
* ``deconv``: ConvTranspose2d(nf, nf, kernel 6, stride 2, padding 2) — 36 nf^2 + nf parameters (kernel 6
  so the count matches; a 4 x 4 kernel would have fewer), PyTorch's default init;
* ``shuffle_random``: the same pixel shuffle with a default (kaiming-uniform) init instead of ICNR.

The checkerboard score is read off the upsampling layer's own output (the zero-initialised tail would
hide it at step 0): how much its four 2 x 2 phases differ on a smooth gradient image, relative to its
magnitude — 0 for ICNR at init (nearest-neighbour upsampling of one conv).

Each trains ``STEPS`` steps of pixel L1 (Adam 1e-3 flat, bs 16, 64-px HR patches of the mirror's photos,
seeded, identical batches for all) from the same seed; then Set5 x2 Y-PSNR (border 2) and the
checkerboard score again.
images/s = training patches / wall time after the warm-up steps. 2 threads.
Worker use: python -m bench.sr_upsample UP STEPS WARMUP
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from bench.common import PROJECT_PY, RAW, BenchError, fmt_ratio, fmt_stat, ratio, run_worker, summarize

NF, N_BLOCKS, BS, PATCH = 32, 6, 16, 64
STEPS = {False: (250, 5), True: (20, 2)}         # (timed training steps, warm-up) per run
KINDS = ("shuffle", "deconv", "shuffle_random")


def mirror() -> Path:
    root = Path(os.environ.get("DLPIPE_MIRROR", "/work/shared/data"))
    if not (root / "sr_benchmarks" / "Set5").is_dir() or not (root / "raccoon_voc" / "images").is_dir():
        raise BenchError(f"{root}: no sr_benchmarks/Set5 or raccoon_voc/images: set DLPIPE_MIRROR to the data mirror")
    return root


def build(kind: str):
    """train_superres's x2 EDSR with the upsampling layer of ``kind``."""
    import torch
    from torch import nn

    from dlpipe.models.edsr import EdsrConfig, edsr

    torch.manual_seed(0)
    net = edsr(EdsrConfig(scale=2, nf=NF, n_blocks=N_BLOCKS, res_scale=0.1))
    if kind == "deconv":
        net.up = nn.Sequential(nn.ConvTranspose2d(NF, NF, 6, stride=2, padding=2))      # (bs, nf, 2h, 2w)
    elif kind == "shuffle_random":
        net.up[0].reset_parameters()
    return net.to(memory_format=torch.channels_last)


def checkerboard(net) -> float:
    """How much the four 2x2 phases of the upsampling layer's output differ, on a smooth input: mean
    |phase - mean of phases| / mean |output| (0 = smooth, as ICNR starts; a checkerboard is > 0)."""
    import torch

    ramp = torch.linspace(0.2, 0.8, 24)
    x = (ramp.view(1, 1, 1, 24) * ramp.view(1, 1, 24, 1)).expand(1, 3, 24, 24)      # a smooth gradient image
    with torch.no_grad():
        h = net.head(x - net.mean)
        f = net.up(h + net.body(h))[..., 8:-8, 8:-8]                                  # (1, nf, 32, 32), off the border
    phases = torch.stack([f[..., i::2, j::2] for i in range(2) for j in range(2)])   # (4, 1, nf, 16, 16)
    return float((phases - phases.mean(0)).abs().mean() / f.abs().mean().clamp_min(1e-12))


def patches(photos, n: int, seed: int):
    """``n`` seeded batches of (lr, hr) x2 patch pairs."""
    import numpy as np
    import torch

    from dlpipe.vision.sr_data import PatchDataset

    torch.manual_seed(seed)
    ds = PatchDataset(photos, 2, PATCH, train=True)
    g = np.random.default_rng(seed)
    for _ in range(n):
        items = [ds[int(i)] for i in g.integers(len(ds), size=BS)]
        yield (torch.stack([a for a, _ in items]).contiguous(memory_format=torch.channels_last),
               torch.stack([b for _, b in items]))


def set5_psnr(net, root: Path) -> float:
    import numpy as np

    from dlpipe.tasks.superres.evaluate import load_set, upscale
    from dlpipe.vision.sr_quality import downscale, mod_crop, psnr_y

    scores = []
    for img in load_set(root / "sr_benchmarks", "Set5").values():
        hr = mod_crop(img, 2)
        scores.append(psnr_y(upscale(net, downscale(hr, 2), "cpu"), hr, 2))
    return float(np.mean(scores))


def worker(a: list[str]) -> None:
    import torch
    import torch.nn.functional as F

    from dlpipe.vision.images import load_image

    kind, steps, warmup = a[0], int(a[1]), int(a[2])
    torch.set_num_threads(2)
    root = mirror()
    photos = [load_image(f, "RGB") for f in sorted((root / "raccoon_voc" / "images").glob("*.jpg"))]
    photos = [p for p in photos if min(p.shape[:2]) >= PATCH]
    net = build(kind).train()
    board0 = checkerboard(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    stamps = []
    for i, (lr, hr) in enumerate(patches(photos, warmup + steps, seed=1)):
        loss = F.l1_loss(net(lr), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup - 1:
            stamps.append(time.perf_counter())
    net.eval()
    print(json.dumps({"images_per_s": BS * steps / (stamps[-1] - stamps[0]), "psnr": set5_psnr(net, root),
                      "checkerboard_init": board0, "checkerboard": checkerboard(net), "final_loss": float(loss.detach()),
                      "n_params_up": sum(p.numel() for p in net.up.parameters())}), flush=True)


def run(peer_py, runs: int, quick: bool) -> dict:
    steps, warmup = STEPS[quick]
    recs = {k: [] for k in KINDS}
    for r in range(runs):
        for kind in KINDS:
            print(f"  sr_upsample: run {r + 1}/{runs}: {kind}", flush=True)
            recs[kind].append(run_worker([PROJECT_PY, "-m", "bench.sr_upsample", kind, str(steps), str(warmup)],
                                         RAW / "logs" / f"sr_upsample_{kind}_{r}.log"))
    stat = {k: {m: summarize([x[m] for x in v]) for m in ("images_per_s", "psnr", "checkerboard", "checkerboard_init")}
            for k, v in recs.items()}
    labels = {"shuffle": "pixel shuffle + ICNR (dlpipe)", "deconv": "transposed conv 6x6 / 2",
              "shuffle_random": "pixel shuffle, default init"}
    rows = [[labels[k], recs[k][0]["n_params_up"], fmt_stat(stat[k]["images_per_s"]),
             fmt_ratio(ratio(stat[k]["images_per_s"], stat["deconv"]["images_per_s"])),
             f"{stat[k]['psnr']['median']:.3f}", f"{stat[k]['checkerboard_init']['median']:.3f}",
             f"{stat[k]['checkerboard']['median']:.3f}"] for k in KINDS]
    return {"title": "Super-resolution upsampling: pixel shuffle + ICNR vs transposed convolution, equal parameters (CPU)",
            "measured": {"stats": stat, "ratio_speed_shuffle_deconv": ratio(stat["shuffle"]["images_per_s"],
                                                                             stat["deconv"]["images_per_s"]),
                         "psnr_gain_shuffle_deconv": stat["shuffle"]["psnr"]["median"] - stat["deconv"]["psnr"]["median"]},
            "notes": [f"x2 EDSR nf {NF}, {N_BLOCKS} blocks, bicubic shortcut; {steps} training steps of bs {BS} "
                      f"({PATCH}-px HR patches of raccoon_voc, seeded, identical batches) after {warmup} warm-up; "
                      "Adam 1e-3 (0.9, 0.999); Set5 x2 Y-PSNR, border 2; 2 threads.",
                      "checkerboard: mean |phase - mean phase| of the upsampling layer's 2x2 output phases on a smooth "
                      "gradient, relative to the output's mean |value|; 0 = no checkerboard.",
                      f"{runs} interleaved run(s), each a fresh process."],
            "tables": [{"caption": "training speed and quality after a fixed number of steps",
                        "headers": ["upsampling", "params", "images/s", "speed vs deconv", "Set5 x2 PSNR",
                                    "checkerboard at init", "after training"], "rows": rows}],
            "targets": []}


if __name__ == "__main__":
    worker(sys.argv[1:])
