"""The CIFAR-10 Darknet as the vision tasks' backbone artifact (stage ``export_backbone``).

``backbone.pt`` (:func:`dlpipe.io.checkpoint.save_model` format, so :func:`dlpipe.vision.features.load_backbone`
reads it like the MNIST one): the whole Darknet's state_dict and config, and in ``extra``:

    normalize   {"mean": [3], "std": [3]}  per-channel stats of the training images (0-1 scale)
    taps        [{"layer": "group1", "channels": 64, "stride": 4}, ...]  where heads may take
                multi-scale features (output of each named layer for a 32 px input)
    classes     the ten CIFAR-10 classes (the head's outputs)
    source      "cifar"; accuracy: the test accuracy train_cifar reported
Consumers depend on this file, not on train_cifar's internals.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from dlpipe.io.checkpoint import save_model
from dlpipe.models.darknet import layer_names, load_darknet


@torch.no_grad()
def feature_taps(model: torch.nn.Sequential, size: int = 32) -> list[dict]:
    """Each named layer's output channels and stride for a ``size`` x ``size`` input (head excluded)."""
    x, taps = torch.zeros(1, model.cfg.in_ch, size, size), []
    model.eval()
    for name in layer_names(model):
        if name == "head":
            break
        x = getattr(model, name)(x)
        taps.append({"layer": name, "channels": int(x.shape[1]),
                     "stride": size // int(x.shape[-1]) if x.dim() == 4 else None})
    return taps


def export_backbone(*, model: Path, metrics_in: Path, out: Path) -> dict:
    """Read train_cifar's model.pt and metrics; write the backbone artifact; return its summary."""
    net, blob = load_darknet(model)
    trained = json.loads(Path(metrics_in).read_text(encoding="utf-8"))
    acc = trained.get("accuracy_tta", trained["accuracy"])
    taps = feature_taps(net)
    save_model(out, net, dataclasses.asdict(net.cfg), extra={
        "normalize": blob["extra"]["normalize"], "taps": taps, "classes": blob["extra"]["classes"],
        "source": "cifar", "accuracy": acc})
    return {"source": "cifar", "accuracy": acc, "n_features": net.n_features, "taps": [t["layer"] for t in taps],
            "n_params": sum(p.numel() for p in net.parameters())}
