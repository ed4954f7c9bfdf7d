"""Deep Dream (stage ``deep_dream``): the content photos dreamt on a loss network's layers.

Metrics per photo: the dreamt layers' mean activation after / before (how much the ascent raised what it
maximised), the pixel change (mean |after - before|, 0-255) and the seconds. Outputs: OUT/<photo>.png;
PLOTS/before_after.png.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dlpipe.core import runtime
from dlpipe.core.atomic import atomic_dir
from dlpipe.core.errors import ParamsError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.tasks.style.common import find_image, network
from dlpipe.tasks.style.params import DreamParams, NetworksParams
from dlpipe.vision.dream import activation_score, deep_dream
from dlpipe.vision.image_rows import plot_panels
from dlpipe.vision.images import load_image
from dlpipe.vision.sr_data import to_tensor
from dlpipe.vision.sr_quality import to_uint8


def fit_long_side(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) resized so the long side is ``size`` (aspect kept)."""
    h, w = img.shape[:2]
    s = size / max(h, w)
    return np.asarray(Image.fromarray(img).resize((max(8, round(w * s)), max(8, round(h * s))), Image.LANCZOS))


def dream(*, images: Path, backbone: Path, out: Path, plots: Path, nets: NetworksParams, p: DreamParams,
          rt: RuntimeParams) -> dict:
    """Dream every photo of ``p.images``; returns the activation gains and timings."""
    runtime.apply(rt)
    n = nets.get(p.network, "style.deep_dream.network")
    missing = [layer for layer in p.layers if layer not in n.layers]
    if missing:
        raise ParamsError(f"style.deep_dream.layers: {missing} are not layers of style.networks.{p.network} "
                          f"({n.layers})")
    dev = runtime.pick_device(rt.device)
    net = network(n, backbone, f"style.networks.{p.network}", dev)
    score = activation_score(net, [n.layers.index(layer) for layer in p.layers])
    files = {stem: find_image(Path(images) / "content", stem, "style.deep_dream.images") for stem in p.images}
    results, rows, dreamt = {}, [], {}
    for stem, f in files.items():
        before = to_tensor(fit_long_side(load_image(f, "RGB"), p.size))[None].to(dev)
        t0 = time.perf_counter()
        after = deep_dream(before, score, p.octaves, p.octave_scale, p.steps, p.step_size, p.jitter, p.seed,
                           desc=f"deep_dream {stem}")
        secs = time.perf_counter() - t0
        with torch.no_grad():
            gain = float(score(after)) / max(float(score(before)), 1e-8)
        a8, b8 = to_uint8(after[0]), to_uint8(before[0])
        results[stem] = {"activation_gain": round(gain, 3), "seconds": round(secs, 2),
                         "pixel_change": round(float(np.abs(a8.astype(int) - b8.astype(int)).mean()), 2)}
        dreamt[stem] = a8
        rows.append([(f"{stem}", b8), (f"dreamt: activation x{gain:.2f}", a8)])
    with atomic_dir(out) as tmp:
        for stem, img in dreamt.items():
            Image.fromarray(img).save(tmp / f"{stem}.png")
    Path(plots).mkdir(parents=True, exist_ok=True)
    plot_panels(rows, Path(plots) / "before_after.png", panel=3.2,
                title=f"Deep Dream on {p.network} {p.layers}: {p.octaves} octaves x {p.steps} steps, jitter {p.jitter}px")
    return {"activation_gain": round(float(np.mean([r["activation_gain"] for r in results.values()])), 3),
            "images": results, "network": net.info["source"], "layers": list(p.layers)}
