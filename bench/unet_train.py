"""U-Net training step (CPU): dlpipe's U-Net vs the same network written as one plain PyTorch module.

dlpipe: ``dlpipe.models.unet.unet`` over ``dlpipe.vision.encoder`` (a Darknet of the sample scale's
shape, nf 16, groups [1, 2, 2], taps stem/group0/group1/group2 at strides 1/2/4/8, the encoder's
Normalize, the decoder's pixel shuffles, skip BNs and size checks), as train_unet builds it.
Peer: bench/peers/plain_unet.py, the same layers in the same order as one hand-written module (no
taps wrapper, no resizing checks). Before timing, the runner loads dlpipe's weights into the peer by
position and checks both give the same logits (max abs difference printed), so the ratio is the cost
of dlpipe's structure, not of a different network.

Both train on the same seeded batches (bs 4, 3 x 176 x 240: about train_unet's half-resolution phase,
12 classes with void ignored) in the same loop: forward, cross-entropy, backward, Adam step; 2
threads. The dlpipe model and the peer run channels_last (as train_unet does); the peer also runs
NCHW, which shows what channels_last buys on this CPU.

images/s = timed images ÷ wall time from the end of the last warm-up step to the end of the last
timed step. GFLOP/image: ``torch.utils.flop_counter`` over one forward + backward.
Worker use: python -m bench.unet_train BS H W STEPS WARMUP NF LAYERS N_CLASSES MEMORY_FORMAT
"""
from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from bench.common import PROJECT_PY, RAW, BenchError, fmt_ratio, fmt_stat, ratio, run_worker, summarize

BS, H, W, NF, LAYERS, N_CLASSES = 4, 176, 240, 16, "1,2,2", 11   # H, W: multiples of 8 (the peer does not resize)
STEPS = {False: (12, 2), True: (3, 1)}               # (timed, warm-up) steps per run
MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]


def dlpipe_unet(nf: int, layers: list[int], n_classes: int):
    """The U-Net train_unet builds over a (seeded, untrained) Darknet backbone file of this shape."""
    import torch

    from dlpipe.io.checkpoint import save_model
    from dlpipe.models.darknet import DarknetConfig, darknet
    from dlpipe.models.unet import UnetConfig, unet
    from dlpipe.vision.encoder import load_encoder

    torch.manual_seed(0)
    cfg = DarknetConfig(in_ch=3, nf=nf, layers=tuple(layers), n_classes=10)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "backbone.pt"
        save_model(path, darknet(cfg), dataclasses.asdict(cfg), extra={"normalize": {"mean": MEAN, "std": STD},
                                                                       "source": "bench"})
        taps = ["stem", *[f"group{i}" for i in range(len(layers))]]
        enc, _ = load_encoder(None, path, taps)
    return unet(UnetConfig(n_classes=n_classes, encoder=enc.spec, skip=True), enc)


def same_function(nf: int, layers: list[int], n_classes: int, weights: Path) -> dict:
    """Load dlpipe's weights into the peer by position; the largest logit difference on a random batch.
    The weights go to ``weights`` (a list of tensors) for the peer's timed runs: equal weights, equal work."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent / "peers"))
    from plain_unet import PlainUnet

    ours = dlpipe_unet(nf, layers, n_classes).eval()
    peer = PlainUnet(nf, layers, n_classes, MEAN, STD).eval()
    a, b = ours.state_dict(), peer.state_dict()
    shapes_a, shapes_b = [tuple(v.shape) for v in a.values()], [tuple(v.shape) for v in b.values()]
    if shapes_a != shapes_b:
        raise BenchError(f"unet_train: the peer's layers differ from dlpipe's ({len(shapes_a)} vs {len(shapes_b)} "
                         "tensors, or their shapes): it is not the same network")
    peer.load_state_dict(dict(zip(b, a.values())))
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(list(a.values()), weights)
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        diff = float((ours(x) - peer(x)).abs().max())
    if diff > 1e-4:
        raise BenchError(f"unet_train: same weights, different logits (max |diff| {diff:.2e}): not the same network")
    return {"max_abs_diff": diff, "tensors": len(shapes_a), "n_params": sum(p.numel() for p in ours.parameters())}


def flops_per_image(net, bs: int, h: int, w: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(bs, 3, h, w)
    with FlopCounterMode(display=False) as fc:
        net(x).sum().backward()
    return fc.get_total_flops() / bs


def dlpipe_worker(a: list[str]) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).parent / "peers"))
    from plain_unet import batches, time_steps     # the same loop and batches as the peer

    bs, h, w, steps, warmup, nf = map(int, a[:6])
    layers, n_classes = [int(v) for v in a[6].split(",")], int(a[7])
    torch.set_num_threads(2)
    net = dlpipe_unet(nf, layers, n_classes)
    fmt = torch.channels_last if a[8] == "channels_last" else torch.contiguous_format
    stamps, losses = time_steps(net, batches(bs, h, w, warmup + steps, n_classes), n_classes, fmt, warmup)
    print(json.dumps({"step_end_s": [s - stamps[0] for s in stamps], "loss": losses,
                      "n_params": sum(p.numel() for p in net.parameters()),
                      "flops_per_image": flops_per_image(net, 1, h, w)}), flush=True)


def run(peer_py, runs: int, quick: bool) -> dict:
    steps, warmup = STEPS[quick]
    weights = RAW / "unet_weights.pt"        # dlpipe's seeded init: the peer trains from the same weights
    check = same_function(NF, [int(v) for v in LAYERS.split(",")], N_CLASSES, weights)
    args = [str(v) for v in (BS, H, W, steps, warmup, NF, LAYERS, N_CLASSES)]
    cmds = {"dlpipe": [PROJECT_PY, "-m", "bench.unet_train", *args, "channels_last"],
            "plain": [PROJECT_PY, "bench/peers/plain_unet.py", *args, "channels_last", str(weights)],
            "plain_nchw": [PROJECT_PY, "bench/peers/plain_unet.py", *args, "nchw", str(weights)]}
    recs = {k: [] for k in cmds}
    for r in range(runs):
        for impl, cmd in cmds.items():
            print(f"  unet_train: run {r + 1}/{runs}: {impl}", flush=True)
            recs[impl].append(run_worker(cmd, RAW / "logs" / f"unet_{impl}_{r}.log"))
    ips = {impl: summarize([BS * (len(x["step_end_s"]) - 1) / x["step_end_s"][-1] for x in v]) for impl, v in recs.items()}
    fl = recs["dlpipe"][0]["flops_per_image"]
    labels = {"dlpipe": "dlpipe U-Net (encoder taps + decoder), channels_last",
              "plain": "plain PyTorch module, same layers, channels_last",
              "plain_nchw": "plain PyTorch module, same layers, NCHW"}
    rows = [[labels[i], fmt_stat(ips[i]), fmt_ratio(ratio(ips[i], ips["plain"])),
             f"{ips[i]['median'] * fl / 1e9:.1f}" if ips[i] else "-"] for i in cmds]
    return {"title": "U-Net training step (CamVid half resolution): dlpipe vs the same network in plain PyTorch (CPU)",
            "measured": {"images_per_s": ips, "ratio_dlpipe_plain": ratio(ips["dlpipe"], ips["plain"]),
                         "ratio_channels_last_nchw": ratio(ips["plain"], ips["plain_nchw"]),
                         "flops_per_image": fl, "same_function": check,
                         "loss": {i: [x["loss"] for x in v] for i, v in recs.items()}},
            "notes": [f"bs {BS}, 3 x {H} x {W} (about train_unet's half-size images), {N_CLASSES} classes + "
                      f"void; Darknet nf {NF}, groups [{LAYERS}], 4 taps; {check['n_params'] / 1e6:.2f}M parameters; "
                      f"{fl / 1e9:.2f} GFLOP per image forward + backward; 2 threads; {steps} timed steps after "
                      f"{warmup} warm-up step(s), seeded batches identical on every side.",
                      f"Same network: dlpipe's weights loaded into the peer by position give the same logits "
                      f"(max |diff| {check['max_abs_diff']:.1e} over {check['tensors']} tensors), checked before timing; "
                      "every side then trains from those same initial weights.",
                      f"{runs} interleaved run(s), each a fresh process."],
            "tables": [{"caption": "training images/s (forward + backward + Adam step)",
                        "headers": ["model", "images/s", "vs plain", "GFLOP/s"], "rows": rows}],
            "targets": []}


if __name__ == "__main__":
    dlpipe_worker(sys.argv[1:])
