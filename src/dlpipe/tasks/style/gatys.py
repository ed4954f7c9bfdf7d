"""Gatys et al.'s style transfer (stage ``gatys@<content>-<style>``): the pixels of one image optimised with
L-BFGS, once per loss network in ``style.gatys.networks`` (the CIFAR Darknet and a random VGG, side by side),
each with its own evaluation budget and total-variation weight (``n_evals`` / ``tv_weight`` per network).

Every result is graded by the separately seeded judge network (``style.networks.judge``), with the
normalised losses of :mod:`dlpipe.vision.style`: **style** = the judge's style distance of the output
as a share of the content image's (the start; the issue's goal is a fall of >= 90%), **content** = its
content distance as a share of the style image's (0 = the photo's layout untouched, 1 = as unlike the
photo as the painting). Outputs: OUT/<network>.png per network; PLOTS/side_by_side.png (content | style
| each result, with the judge's numbers) and PLOTS/loss_curves.png (each network's own losses per
L-BFGS evaluation).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch
from PIL import Image

from dlpipe.core import runtime
from dlpipe.core.atomic import atomic_dir
from dlpipe.core.errors import ParamsError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.plots import save_fig
from dlpipe.tasks.style.common import find_image, network, square_tensor
from dlpipe.tasks.style.params import GatysParams, NetworksParams
from dlpipe.vision.image_rows import plot_panels
from dlpipe.vision.sr_quality import to_uint8
from dlpipe.vision.style import grade, lbfgs_pixels, objective, timed


def start_image(content: torch.Tensor, p: GatysParams) -> torch.Tensor:
    """The content image, or seeded uniform noise (the lecture's: smoothed, halved) of its size."""
    if p.init == "content":
        return content.clone()
    g = torch.Generator().manual_seed(p.seed)
    noise = torch.rand(content.shape, generator=g).to(content.device)
    return torch.nn.functional.avg_pool2d(noise, 5, stride=1, padding=2, count_include_pad=False) / 2 + 0.25


def plot_curves(histories: dict[str, list[dict]], dest: Path, title: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, h in histories.items():
        for ax, k in zip(axes, ("style", "content")):
            ax.plot([r["eval"] for r in h], [r[k] for r in h], label=name)
    for ax, k in zip(axes, ("style", "content")):
        ax.set(xlabel="L-BFGS evaluation", ylabel=f"{k} loss (own network, normalised)", yscale="log" if k == "style" else "linear")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_fig(fig, dest)


def per_network(p: GatysParams) -> None:
    """``n_evals`` and ``tv_weight`` must name every network in ``networks``, with sensible values."""
    for key, d in (("n_evals", p.n_evals), ("tv_weight", p.tv_weight)):
        missing = [n for n in p.networks if n not in d]
        if missing:
            raise ParamsError(f"style.gatys.{key}: {d}: expected a value for each of style.gatys.networks {p.networks}")
        bad = {n: v for n, v in d.items() if v < (1 if key == "n_evals" else 0)}
        if bad:
            raise ParamsError(f"style.gatys.{key}: {bad}: expected {'>= 1' if key == 'n_evals' else '>= 0'}")


def gatys(*, images: Path, backbone: Path, out: Path, plots: Path, content: str, style: str, nets: NetworksParams,
          p: GatysParams, rt: RuntimeParams) -> dict:
    """Stylise ``content`` with ``style`` on each network; returns the judge's grades and timings."""
    runtime.apply(rt)
    for name in p.networks:
        nets.get(name, "style.gatys.networks")
    per_network(p)
    dev = runtime.pick_device(rt.device)          # L-BFGS on the pixels runs where the network does
    c_img = square_tensor(find_image(Path(images) / "content", content, "style.pairs.content"), p.size,
                          "style.gatys.size").to(dev)
    s_img = square_tensor(find_image(Path(images) / "style", style, "style.pairs.style"), p.size,
                          "style.gatys.size").to(dev)
    jn = nets.get("judge", "style.networks.judge")
    judge = objective(network(jn, backbone, "style.networks.judge", dev), c_img, s_img, jn.content, jn.style)
    results, images_out, histories = {}, {}, {}
    for name in p.networks:
        n = nets.get(name, "style.gatys.networks")
        obj = objective(network(n, backbone, f"style.networks.{name}", dev), c_img, s_img, n.content, n.style)
        (x, hist), secs = timed(lbfgs_pixels, obj, start_image(c_img, p), p.content_weight, p.style_weight,
                                p.n_evals[name], p.history_size, f"gatys {content}-{style} {name}", p.tv_weight[name])
        g = grade(judge, x)
        results[name] = {"n_evals": len(hist), "judge_style": round(g["style"], 4), "judge_content": round(g["content"], 4),
                         "style_fall": round(1 - g["style"] / grade(judge, start_image(c_img, p))["style"], 4),
                         "own_style_fall": round(1 - hist[-1]["style"] / hist[0]["style"], 4) if hist[0]["style"] else None,
                         "seconds": round(secs, 2), "evals_per_s": round(len(hist) / secs, 2)}
        images_out[name], histories[name] = to_uint8(x[0]), hist
    with atomic_dir(out) as tmp:
        for name, img in images_out.items():
            Image.fromarray(img).save(tmp / f"{name}.png")
    Path(plots).mkdir(parents=True, exist_ok=True)
    row = [(f"content: {content}", to_uint8(c_img[0])), (f"style: {style}", to_uint8(s_img[0]))]
    row += [(f"{name}\njudge: style {r['judge_style']:.2f}, content {r['judge_content']:.2f}", images_out[name])
            for name, r in results.items()]
    evals = ", ".join(f"{n} {p.n_evals[n]}" for n in p.networks)
    plot_panels([row], Path(plots) / "side_by_side.png", panel=3.0,
                title=f"Gatys at {p.size}px, L-BFGS evaluations: {evals}; judge = separately seeded {jn.source}")
    plot_curves(histories, Path(plots) / "loss_curves.png", f"{content} x {style}")
    head = results[p.networks[0]]
    return {"content": content, "style": style, "size": p.size, "init": p.init,
            "style_fall": head["style_fall"], "judge_content": head["judge_content"], "seconds": head["seconds"],
            "networks": results, "judge": jn.source + f" seed {jn.seed}"}
