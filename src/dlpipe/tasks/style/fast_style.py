"""Fast style transfer (stage ``train_fast_style``): Johnson et al.'s feed-forward transformer trained for
one painting with the perceptual loss on random crops of the photo pool (superres' index_photos: the
raccoon, CamVid and AFHQ photos), through the one Learner; then every content photo stylised in one
forward pass each, timed, and graded by the same judge as Gatys (:mod:`dlpipe.tasks.style.gatys`).

Outputs: MODEL (the transformer), OUT/<photo>.png, PLOTS/stylised.png; the Learner's history and curves.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dlpipe.core import runtime
from dlpipe.core.atomic import atomic_dir
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.io.checkpoint import save_model
from dlpipe.models.transformer_net import TransformerConfig, transformer_net
from dlpipe.tasks.style.common import find_image, network, square, square_tensor
from dlpipe.tasks.style.params import FastStyleParams, NetworksParams
from dlpipe.tasks.superres.index import list_images, load_photos
from dlpipe.train import Optim, Phase, adamw, fingerprint, fit_and_save, make_learner, make_loader, predict
from dlpipe.vision.image_rows import plot_panels
from dlpipe.vision.sr_data import dihedral, to_tensor
from dlpipe.vision.sr_quality import to_uint8
from dlpipe.vision.style import FeedForwardStyleLoss, grade, objective


class Crops(Dataset):
    """(x, x) pairs of ``size`` crops: random + flipped (train, ``repeat`` per photo) or centred."""

    def __init__(self, photos: list[np.ndarray], size: int, train: bool, repeat: int = 1):
        self.photos, self.size, self.train, self.repeat = photos, size, train, repeat if train else 1

    def __len__(self) -> int:
        return len(self.photos) * self.repeat

    def __getitem__(self, i: int):
        img = self.photos[i % len(self.photos)]
        h, w, p = img.shape[0], img.shape[1], self.size
        if self.train:
            y, x, k = int(torch.randint(h - p + 1, ())), int(torch.randint(w - p + 1, ())), int(torch.randint(2, ()))
            crop = dihedral(img[y:y + p, x:x + p], k)          # k in {0, 1}: as is, or mirrored
        else:
            crop = img[(h - p) // 2:(h - p) // 2 + p, (w - p) // 2:(w - p) // 2 + p]
        t = to_tensor(np.ascontiguousarray(crop))
        return t, t


def stylise(net, images: dict[str, torch.Tensor], device: str) -> tuple[dict[str, torch.Tensor], float]:
    """Each (1, 3, s, s) image through the transformer; returns the outputs and seconds per image."""
    predict(net, [next(iter(images.values()))], device)                  # warm-up (allocations, oneDNN kernels)
    t0 = time.perf_counter()
    out = {k: predict(net, [v], device) for k, v in images.items()}
    return out, (time.perf_counter() - t0) / len(images)


def train_fast_style(*, photos: Path, images: Path, backbone: Path, model: Path, out: Path, plots: Path,
                     nets: NetworksParams, p: FastStyleParams, rt: RuntimeParams, dirs: RunDirs) -> dict:
    """Train the transformer for ``p.style``; stylise and grade the content photos."""
    runtime.apply(rt)
    style_file = find_image(Path(images) / "style", p.style, "style.train_fast_style.style")
    style_img = square_tensor(style_file, p.size, "style.train_fast_style.size")
    train = load_photos(photos, "train", min_side=p.size)
    valid = load_photos(photos, "valid", min_side=p.size)
    n = nets.get(p.network, "style.train_fast_style.network")
    lossnet = network(n, backbone, f"style.networks.{p.network}")
    ref = torch.stack([Crops(valid, p.size, False)[i][0] for i in range(len(valid))])     # (n_valid, 3, s, s)
    loss = FeedForwardStyleLoss(lossnet, n.content, n.style, style_img, ref, p.content_weight, p.style_weight)
    cfg = TransformerConfig(nf=p.nf, n_res=p.n_res)
    net = transformer_net(cfg)
    fp = fingerprint("train_fast_style", n, p, rt.seed, files=(Path(photos) / "photos.csv", style_file, Path(backbone)))
    learn = make_learner(net, make_loader(Crops(train, p.size, True, p.repeat), p.bs, True, rt.seed, drop_single=True),
                         make_loader(Crops(valid, p.size, False), p.bs, False, rt.seed), loss, rt=rt, dirs=dirs,
                         fingerprint=fp, optim=Optim(opt_func=adamw()),
                         config=dataclasses.asdict(cfg))
    t0, graded = time.perf_counter(), {}

    def save(final: dict) -> None:
        """Stylise and grade first, the model file last: a run killed in between has no model yet and resumes."""
        t1 = time.perf_counter()
        graded.update(evaluate_on_photos(net, images, backbone, nets, p, rt, out, plots), eval_seconds=0.0)
        graded["eval_seconds"] = round(time.perf_counter() - t1, 1)
        save_model(model, net, dataclasses.asdict(cfg), extra={"style": p.style, "network": lossnet.info, "valid": final})

    final = fit_and_save(learn, [Phase("fit", p.epochs, p.lr, sched_kwargs={"pct_start": p.pct_start})], save)
    secs = time.perf_counter() - t0 - graded.get("eval_seconds", 0.0)
    return {**graded, "train_seconds": round(secs, 1),
            "valid_loss": round(final["valid_loss"], 5), "n_train_photos": len(train), "network": lossnet.info["source"],
            "n_params": sum(q.numel() for q in net.parameters())}


def evaluate_on_photos(net, images: Path, backbone: Path, nets: NetworksParams, p: FastStyleParams,
                       rt: RuntimeParams, out: Path, plots: Path) -> dict:
    """Stylise every content photo at ``eval_size``; the judge's grades (as for Gatys) and the time per image."""
    folder = Path(images) / "content"
    key = "style.train_fast_style.eval_size"
    photos = {f.stem: to_tensor(square(f, p.eval_size, key))[None] for f in list_images(folder)}
    styled, per_image = stylise(net, photos, rt.device)
    style_img = square_tensor(find_image(Path(images) / "style", p.style, "style.train_fast_style.style"), p.eval_size, key)
    jn = nets.get("judge", "style.networks.judge")
    judge_net = network(jn, backbone, "style.networks.judge")
    grades = {}
    for stem, x in photos.items():
        judge = objective(judge_net, x, style_img, jn.content, jn.style)
        g = grade(judge, styled[stem])
        grades[stem] = {"style_fall": round(1 - g["style"], 4), "judge_content": round(g["content"], 4)}
    with atomic_dir(out) as tmp:
        for stem, y in styled.items():
            Image.fromarray(to_uint8(y[0])).save(tmp / f"{stem}.png")
    Path(plots).mkdir(parents=True, exist_ok=True)
    rows = [[(stem, to_uint8(photos[stem][0])), (f"fast style: judge style fall {g['style_fall']:.2f}, "
                                                 f"content {g['judge_content']:.2f}", to_uint8(styled[stem][0]))]
            for stem, g in grades.items()]
    plot_panels([[("style: " + p.style, to_uint8(style_img[0]))]] + rows, Path(plots) / "stylised.png", panel=3.0,
                title=f"one forward pass per photo at {p.eval_size}px ({per_image * 1000:.0f} ms each)")
    return {"style": p.style, "seconds_per_image": round(per_image, 4), "eval_size": p.eval_size,
            "style_fall": round(float(np.mean([g["style_fall"] for g in grades.values()])), 4),
            "judge_content": round(float(np.mean([g["judge_content"] for g in grades.values()])), 4), "photos": grades}
