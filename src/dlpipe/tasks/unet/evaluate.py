"""U-Net evaluation (stage ``evaluate_unet``): every variant on the validation and test images, at full size.

Metrics per split and variant: pixel accuracy (void excluded), per-class IoU and Dice and their means
(torchmetrics' ``MulticlassJaccardIndex`` / ``MulticlassF1Score`` with ``ignore_index`` = void; a class
neither true nor predicted in a split is left out of the means), and the headline: the ``unet`` variant's
validation mIoU and pixel accuracy. Pictures in OUT: ``confusion.png`` (unet, validation, row %),
``overlays.png`` (validation images: truth and each variant), ``iou.png`` (per-class IoU, every variant).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torchmetrics.classification import MulticlassF1Score, MulticlassJaccardIndex

from dlpipe.core import runtime
from dlpipe.core.errors import DataError, ParamsError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.models.unet import load_unet
from dlpipe.plots import confusion as counts, md_table, plot_confusion
from dlpipe.core.atomic import write_text
from dlpipe.tasks.unet.params import EvalParams
from dlpipe.tasks.unet.index import load_meta, load_split
from dlpipe.train import predict
from dlpipe.vision.seg_plots import plot_class_iou, plot_mask_rows
from dlpipe.vision.segment import scores_from_confusion


def predict_masks(net: torch.nn.Module, images: np.ndarray, device: str, bs: int = 2, tta: bool = False) -> np.ndarray:
    """Argmax labels (n, H, W) uint8 of uint8 (n, H, W, 3) images at their own size; with ``tta`` the
    class probabilities are averaged with those of the mirrored image (mirrored back)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2)                         # (n, 3, H, W) uint8

    def batches(flip: bool):
        for i in range(0, len(x), bs):
            b = x[i:i + bs].float().div(255.0)
            yield (b.flip(-1) if flip else b).contiguous(memory_format=torch.channels_last)

    probs = predict(net, batches(False), device).softmax(1)                 # (n, n_classes, H, W)
    if tta:
        probs += predict(net, batches(True), device).softmax(1).flip(-1)
    return probs.argmax(1).to(torch.uint8).numpy()


def confusion(pred: torch.Tensor, y: torch.Tensor, n: int, void: int) -> np.ndarray:
    """(n, n) counts of (true, predicted) over the non-void pixels."""
    keep = y != void
    return counts(y[keep].numpy(), pred[keep].numpy(), n)


def split_scores(pred: np.ndarray, y: np.ndarray, classes: list[str], void: int) -> tuple[dict, np.ndarray]:
    """Metrics of one variant on one split (torchmetrics), and the (n, n) pixel confusion matrix."""
    n = len(classes)
    p_t, y_t = torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(y.astype(np.int64))
    iou = MulticlassJaccardIndex(n, average="none", ignore_index=void)(p_t, y_t).numpy()
    dice = MulticlassF1Score(n, average="none", ignore_index=void, multidim_average="global")(
        p_t.reshape(-1), y_t.reshape(-1)).numpy()
    cm = confusion(p_t, y_t, n, void)
    absent = (cm.sum(0) + cm.sum(1)) == 0            # neither true nor predicted: no score, not a 0
    iou, dice = np.where(absent, np.nan, iou), np.where(absent, np.nan, dice)
    acc = scores_from_confusion(cm)["pixel_accuracy"]
    r = lambda v: None if np.isnan(v) else round(float(v), 4)   # noqa: E731
    return {"pixel_accuracy": round(acc, 4), "miou": r(np.nanmean(iou)), "mean_dice": r(np.nanmean(dice)),
            "iou": {c: r(v) for c, v in zip(classes, iou)}, "dice": {c: r(v) for c, v in zip(classes, dice)}}, cm


def parse_models(specs: list[str]) -> dict[str, Path]:
    """``name=path`` pairs, in order; the ``unet`` variant must be among them."""
    out = {}
    for s in specs:
        name, sep, path = s.partition("=")
        if not sep or not name or not path:
            raise ParamsError(f"evaluate_unet --model {s!r}: expected NAME=PATH")
        out[name] = Path(path)
    if "unet" not in out:
        raise ParamsError(f"evaluate_unet: no --model unet=PATH among {list(out)} (the headline variant)")
    return out


def evaluate_unet(*, data: Path, model: list[str], out: Path, p: EvalParams, rt: RuntimeParams) -> dict:
    """Score every variant on valid and test; write the pictures and results.md to ``out``."""
    runtime.apply(rt)
    meta = load_meta(data)
    classes, void = meta["classes"], meta["void"]
    models, out = parse_models(model), Path(out)
    splits = {s: load_split(data, s) for s in ("valid", "test") if (Path(data) / f"{s}_images.npy").exists()}
    results, preds, cms, secs = {s: {} for s in splits}, {}, {}, {}
    for name, path in models.items():
        net, blob = load_unet(path)
        trained = blob.get("extra", {}).get("classes")
        if trained != classes:
            raise DataError(f"{path}: trained on classes {trained}, but {data} has {classes} (retrain on this index)")
        net = net.to(memory_format=torch.channels_last)
        for s, (x, y) in splits.items():
            t0 = time.perf_counter()
            pred = predict_masks(net, x, rt.device, tta=p.tta)
            secs[name] = round((time.perf_counter() - t0) / len(x), 3)
            results[s][name], cms[(s, name)] = split_scores(pred, y, classes, void)
            preds[(s, name)] = pred
    out.mkdir(parents=True, exist_ok=True)
    x_va, y_va = splits["valid"]
    cm = cms[("valid", "unet")]
    pct = np.round(100 * cm / np.maximum(cm.sum(1, keepdims=True), 1)).astype(int)
    plot_confusion(pct, classes, out / "confusion.png", title=f"U-Net, validation pixels (row %), "
                   f"mIoU {results['valid']['unet']['miou']}")
    k = min(p.n_overlays, len(x_va))
    plot_mask_rows(list(x_va[:k]), {"truth": list(y_va[:k]), **{n: list(preds[("valid", n)][:k]) for n in models}},
                   classes, void, out / "overlays.png", title="validation images: truth and each variant")
    plot_class_iou({n: [results["valid"][n]["iou"][c] if results["valid"][n]["iou"][c] is not None else np.nan
                        for c in classes] for n in models}, classes, out / "iou.png", title="validation IoU per class")
    write_text(out / "results.md", results_table(results, classes))
    head = results["valid"]["unet"]
    return {"miou": head["miou"], "pixel_accuracy": head["pixel_accuracy"], "mean_dice": head["mean_dice"], "tta": p.tta,
            **results, "seconds_per_image": secs, "n_valid": len(x_va),
            "n_test": len(splits["test"][0]) if "test" in splits else 0}


def results_table(results: dict, classes: list[str]) -> str:
    """Markdown: one row per split x variant (pixel acc, mIoU, Dice), then per-class IoU (validation)."""
    rows = [[s, n, r["pixel_accuracy"], r["miou"], r["mean_dice"]] for s, byv in results.items() for n, r in byv.items()]
    text = md_table(["split", "variant", "pixel acc", "mIoU", "mean Dice"], rows)
    iou = [[n, *[r["iou"][c] for c in classes]] for n, r in results["valid"].items()]
    return text + "\nValidation IoU per class:\n\n" + md_table(["variant", *classes], iou)
