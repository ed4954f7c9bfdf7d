"""Super-resolution evaluation (stage ``evaluate_superres``): every model on the benchmark sets beside bicubic.

For each model (its scale from its file) and each set: per image, the mod-cropped ground truth, its
bicubic downscale as input, the model's uint8 output; Y-channel PSNR and SSIM with a ``scale``-pixel
border removed (:mod:`dlpipe.vision.sr_quality`), and the edge-energy ratio to the ground truth (blur < 1).
Bicubic upsampling of the same input is scored in the same run. Pictures in OUT: ``crops_x<s>.png``
(bicubic | each model | ground truth, a centre crop of chosen images), and ``results.md``.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from dlpipe.core import runtime
from dlpipe.core.atomic import write_text
from dlpipe.core.errors import DataError, ParamsError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.models.edsr import load_edsr
from dlpipe.plots import md_table
from dlpipe.tasks.superres.index import list_images
from dlpipe.tasks.superres.params import EvalParams
from dlpipe.train import predict
from dlpipe.vision.image_rows import plot_panels
from dlpipe.vision.images import load_image
from dlpipe.vision.sr_data import to_tensor
from dlpipe.vision.sr_quality import bicubic_resize, downscale, edge_energy, mod_crop, psnr_y, ssim_y, to_uint8


def parse_models(specs: list[str]) -> list[tuple[str, Path]]:
    """``name=path`` pairs, in order (a name may recur at another scale: l1 at x2 and at x4)."""
    out = []
    for s in specs:
        name, sep, path = s.partition("=")
        if not sep or not name or not path or name == "bicubic":
            raise ParamsError(f"evaluate_superres --model {s!r}: expected NAME=PATH (NAME not 'bicubic')")
        out.append((name, Path(path)))
    return out


def group_by_scale(models: list[tuple[str, Path]]) -> dict[int, dict]:
    """{scale: {name: network}}, each network's scale read from its file."""
    out: dict[int, dict] = {}
    for name, path in models:
        net, _ = load_edsr(path)
        group = out.setdefault(net.cfg.scale, {})
        if name in group:
            raise ParamsError(f"evaluate_superres --model {name}={path}: a second x{net.cfg.scale} model named {name!r}")
        group[name] = net.to(memory_format=torch.channels_last)
    return dict(sorted(out.items()))


def load_set(root: Path, name: str) -> dict[str, np.ndarray]:
    """{image name: uint8 (H, W, 3)} of one benchmark folder (grayscale files as 3 equal channels)."""
    files = list_images(Path(root) / name)
    if not files:
        raise DataError(f"{Path(root) / name}: no images (superres.evaluate.sets names folders of {root})")
    return {f.stem: load_image(f, "RGB") for f in files}


def upscale(net, lr: np.ndarray, device: str) -> np.ndarray:
    """One uint8 (h, w, 3) input -> the model's uint8 (scale h, scale w, 3) output."""
    x = to_tensor(lr)[None].contiguous(memory_format=torch.channels_last)
    return to_uint8(predict(net, [x], device)[0])


def score(sr: np.ndarray, hr: np.ndarray, scale: int) -> dict:
    return {"psnr": psnr_y(sr, hr, scale), "ssim": ssim_y(sr, hr, scale), "edge": edge_energy(sr) / edge_energy(hr)}


def evaluate_set(nets: dict, scale: int, images: dict[str, np.ndarray], device: str, keep: set[str]):
    """Per-image scores of bicubic and each net at one scale; outputs of the images in ``keep``."""
    per, kept, secs = {}, {}, {n: 0.0 for n in nets}
    for name, img in images.items():
        hr = mod_crop(img, scale)
        lr = downscale(hr, scale)
        outs = {"bicubic": bicubic_resize(lr, hr.shape[:2])}
        for n, net in nets.items():
            t0 = time.perf_counter()
            outs[n] = upscale(net, lr, device)
            secs[n] += time.perf_counter() - t0
        per[name] = {n: score(o, hr, scale) for n, o in outs.items()}
        if name in keep:
            kept[name] = {**outs, "ground truth": hr}
    return per, kept, {n: s / len(images) for n, s in secs.items()}


def mean_scores(per: dict) -> dict:
    """{method: {psnr, ssim, edge}} averaged over a set's images."""
    methods = next(iter(per.values())).keys()
    return {m: {k: round(float(np.mean([per[i][m][k] for i in per])), 4 if k != "psnr" else 3)
                for k in ("psnr", "ssim", "edge")} for m in methods}


def centre_crop(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(side, h, w)
    return img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]


def evaluate_superres(*, bench: Path, out: Path, model: list[str], p: EvalParams, rt: RuntimeParams) -> dict:
    """Score every model on every set; write crops_x<s>.png and results.md to ``out``."""
    runtime.apply(rt)
    by_scale = group_by_scale(parse_models(model))
    sets = {s: load_set(bench, s) for s in p.sets}
    for c in p.crop_images:
        s, _, name = c.partition("/")
        if s not in sets or name not in sets[s]:
            raise ParamsError(f"superres.evaluate.crop_images: {c!r}: expected Set/name among {list(sets)}")
    results, seconds, out = {}, {}, Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for scale, group in by_scale.items():
        rows = []
        for s, images in sets.items():
            keep = {c.partition("/")[2] for c in p.crop_images if c.startswith(s + "/")}
            per, kept, secs = evaluate_set(group, scale, images, rt.device, keep)
            results[f"x{scale}"] = {**results.get(f"x{scale}", {}), s: {"mean": mean_scores(per), "per_image": {
                i: {m: {k: round(v, 4) for k, v in d.items()} for m, d in ms.items()} for i, ms in per.items()}}}
            seconds.update({f"x{scale}_{n}_{s}": round(v, 3) for n, v in secs.items()})
            for i, outs in kept.items():
                rows.append([(f"{s}/{i} {m}" + (f"\n{per[i][m]['psnr']:.2f} dB" if m in per[i] else ""),
                              centre_crop(o, p.crop)) for m, o in outs.items()])
        plot_panels(rows, out / f"crops_x{scale}.png", title=f"x{scale}: bicubic | models | ground truth "
                    f"(centre {p.crop}px crops; Y-PSNR, border {scale})")
    write_text(out / "results.md", results_table(results))
    return {**headline(results), **{k: {s: v["mean"] for s, v in r.items()} for k, r in results.items()},
            "seconds_per_image": seconds, "n_images": {s: len(v) for s, v in sets.items()}}


def headline(results: dict) -> dict:
    """Flat numbers for `dvc metrics diff`: each model's and bicubic's Y-PSNR per scale and set."""
    return {f"{key}_{s}_{m}_psnr": v["psnr"] for key, sets in results.items() for s, r in sets.items()
            for m, v in r["mean"].items()}


def results_table(results: dict) -> str:
    """Markdown: one row per scale x set x method (PSNR, SSIM, edge ratio)."""
    rows = [[k, s, m, v["psnr"], v["ssim"], v["edge"]] for k, sets in results.items() for s, r in sets.items()
            for m, v in r["mean"].items()]
    text = md_table(["scale", "set", "method", "PSNR (Y, dB)", "SSIM (Y)", "edge energy / GT"], rows)
    for k, sets in results.items():
        for s, r in sets.items():
            methods = list(r["mean"])
            text += f"\n{k} {s}, Y-PSNR (dB) per image:\n\n" + md_table(
                ["image", *methods], [[i, *[round(ms[m]["psnr"], 2) for m in methods]] for i, ms in r["per_image"].items()])
    return text
