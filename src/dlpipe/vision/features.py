"""Frozen backbones cut at a named layer, and streaming their activations into a feature store.

Two kinds of backbone (``vision.backbone.weights``):

* ``null``: our Darknet from ``pretrain_backbone`` (checkpoint from ``save_model``; its input
  normalisation travels in ``extra["normalize"]``). Identity = sha256 of the checkpoint file.
* ``"torchvision:<arch>"`` (e.g. ``torchvision:resnet18``): torchvision's architecture with weights from
  a local state_dict file (``vision.backbone.weights_path``, e.g. ImageNet weights a user already has);
  nothing is ever fetched from a hub. Identity = sha256 over the loaded state_dict.

Rows go to the store in a seeded pre-shuffled order (2017 lesson 9): the permutation is applied to
the *dataset order* before the forward passes, so an epoch over the store reads contiguous chunks.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from dlpipe.io.arrays import check_free_space, create_store, dir_nbytes
from dlpipe.models.darknet import cut, load_darknet
from dlpipe.train.predict import predict_batches
from dlpipe.vision.transforms import to_float


@dataclass(frozen=True)
class BackboneParams:
    weights: str | None          # null: our Darknet from pretrain_backbone; "torchvision:resnet18"
    weights_path: str | None     # torchvision only: a local state_dict file of that architecture (never a download)
    in_ch: int = field(metadata=dict(ge=1))
    nf: int = field(metadata=dict(ge=1))
    layers: list[int] = field(metadata=dict(ge=0, each=True, nonempty=True))


IMAGENET_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def file_sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def state_sha256(model: nn.Module) -> str:
    """sha256 over a model's state_dict (names, shapes, bytes) in key order."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def load_backbone(weights: str | None, checkpoint: str | os.PathLike | None, layer: str,
                  weights_path: str | os.PathLike | None = None) -> tuple[nn.Module, dict]:
    """The frozen backbone (eval mode, no grad) cut after ``layer``, and its identity/normalisation.

    Returns:
        ``(module, info)``; info has ``backbone_sha256``, ``backbone`` (a label), ``in_ch``,
        ``mean``, ``std``.
    """
    if weights is None:
        if checkpoint is None:
            raise ValueError("backbone: weights is null, so a pretrained Darknet checkpoint path is required")
        model, blob = load_darknet(checkpoint)
        mean, std = blob["extra"]["normalize"]["mean"], blob["extra"]["normalize"]["std"]
        source = blob["extra"].get("source")      # "cifar" from export_backbone; the MNIST one has none
        info = {"backbone": f"darknet:{source}" if source else "darknet", "backbone_sha256": file_sha256(checkpoint),
                "in_ch": model.cfg.in_ch}
        body = cut(model, layer)
    elif weights.startswith("torchvision:"):
        # the file dvc.yaml passes (vision.precompute.<dataset>.backbone) unless weights_path names another
        body, info = _torchvision_backbone(weights.split(":", 1)[1], layer, weights_path or checkpoint)
        mean, std = IMAGENET_STATS
    else:
        raise ValueError(f"backbone.weights: expected null or 'torchvision:<arch>', got {weights!r}")
    body.eval().requires_grad_(False)
    return body, {**info, "mean": list(mean), "std": list(std), "layer": layer}


def _torchvision_backbone(arch: str, layer: str, weights_path: str | os.PathLike | None) -> tuple[nn.Module, dict]:
    """torchvision's ``arch`` with the state_dict of the local file ``weights_path``, cut at ``layer``."""
    import torchvision

    from dlpipe.core.errors import ParamsError
    from dlpipe.io.checkpoint import load_state_strict

    if weights_path is None or not os.path.isfile(weights_path):
        raise ParamsError(f"vision.backbone.weights_path: backbone torchvision:{arch} needs a local state_dict file "
                          f"(there, or as vision.precompute.<dataset>.backbone; weights are never downloaded), "
                          f"got {weights_path!r}")
    model = torchvision.models.get_model(arch, weights=None)
    sd = torch.load(weights_path, map_location="cpu", weights_only=True)
    load_state_strict(model, sd.get("state_dict", sd) if isinstance(sd, dict) else sd, str(weights_path))
    sha = state_sha256(model)
    return cut_torchvision(model, layer, arch), {"backbone": f"torchvision:{arch}", "backbone_sha256": sha, "in_ch": 3}


def cut_torchvision(model: nn.Module, layer: str, arch: str = "model") -> nn.Module:
    """A torchvision classifier cut before its classifier (``pool``) or after a graph node (``layer3``)."""
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    if layer == "pool":
        for name in ("fc", "classifier", "heads", "head"):
            if hasattr(model, name):
                setattr(model, name, nn.Identity())     # output: the pooled, flattened features (bs, C)
                return model
        raise ValueError(f"backbone torchvision:{arch}: no fc/classifier/heads attribute to cut at 'pool'")
    nodes = get_graph_node_names(model)[1]
    if not any(n == layer or n.startswith(layer + ".") for n in nodes):   # a module name = its last node
        raise ValueError(f"backbone torchvision:{arch}: no layer '{layer}' (e.g. {', '.join(nodes[-8:])})")
    return nn.Sequential(create_feature_extractor(model, return_nodes={layer: "out"}), _Pick("out"))


class _Pick(nn.Module):
    """Select one output of a feature extractor's dict."""

    def __init__(self, key: str):
        super().__init__()
        self.key = key

    def forward(self, d: dict) -> torch.Tensor:
        return d[self.key]


@torch.no_grad()
def row_shape(body: nn.Module, in_ch: int, size: int) -> tuple[int, ...]:
    """Shape of one output row for a ``size`` x ``size`` input."""
    return tuple(body(torch.zeros(1, in_ch, size, size)).shape[1:])


class _Items(torch.utils.data.Dataset):
    """Store row r -> the uint8 image of dataset item ``order[r]`` (decoded in a loader worker)."""

    def __init__(self, load: Callable[[int], np.ndarray], order: np.ndarray):
        self.load, self.order = load, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, r: int) -> np.ndarray:
        return self.load(int(self.order[r]))


def image_batches(load: Callable[[int], np.ndarray], order: np.ndarray, bs: int, n_workers: int):
    """uint8 (b, size, size, C) batches of the items in ``order``, in order; ``n_workers`` processes
    decode them (torch's DataLoader: each worker takes whole batches, results come back in order)
    while the caller runs the backbone. Workers are forked, so ``load`` may be any closure."""
    ctx = "fork" if n_workers and "fork" in torch.multiprocessing.get_all_start_methods() else None
    return torch.utils.data.DataLoader(_Items(load, order), batch_size=bs, shuffle=False, num_workers=n_workers,
                                       collate_fn=np.stack, multiprocessing_context=ctx,
                                       prefetch_factor=2 if n_workers else None)


@torch.no_grad()
def extract_features(body: nn.Module, info: dict, load: Callable[[int], np.ndarray], order: np.ndarray,
                     size: int, out: str | os.PathLike, bs: int, dtype: str, store_kw: dict, meta: dict,
                     arrays: dict[str, np.ndarray], desc: str = "precompute", n_workers: int = 0,
                     device: str = "auto") -> dict:
    """Run ``body`` over items ``order[0], order[1], ...`` and stream the rows into a store at ``out``.

    Args:
        load: item index -> uint8 (size, size, C) image.
        n_workers: processes decoding images in parallel (0: in this process), see :func:`image_batches`.
        device: where the backbone runs ("auto": CUDA when present).
        order: the row order: store row r holds dataset item ``order[r]``.
        store_kw: backend, chunk_rows, clevel, cname for :func:`create_store`.
        meta: extra provenance for meta.json (row order seed, dataset, split, classes...).
        arrays: side arrays in dataset order (labels...); stored permuted by ``order``, plus ``order``.
    Returns:
        metrics: rows, images_per_s, bytes_on_disk, raw_bytes, compression_ratio, seconds.
    """
    shape = row_shape(body, info["in_ch"], size)
    raw = len(order) * int(np.prod(shape)) * np.dtype(dtype).itemsize
    check_free_space(out, raw, what=f"features {(len(order), *shape)} {dtype}")
    meta = {**meta, "backbone": info["backbone"], "backbone_sha256": info["backbone_sha256"],
            "layer": info["layer"], "input_size": size, "expected_rows": len(order)}
    t0 = time.perf_counter()
    batches = tqdm(image_batches(load, order, bs, n_workers), desc=desc, unit="batch", mininterval=1.0)
    floats = (to_float(imgs, info["in_ch"], info["mean"], info["std"]) for imgs in batches)   # (b, C, size, size)
    with create_store(out, shape, dtype, meta=meta, **store_kw) as w:
        for feats in predict_batches(body, floats, device):
            w.append(feats.numpy().astype(dtype, copy=False))      # (b, *shape)
        for name, arr in arrays.items():
            w.add_array(name, np.asarray(arr)[order])
        w.add_array("order", order.astype(np.int64))
    secs = time.perf_counter() - t0
    disk = dir_nbytes(out)
    return {"rows": len(order), "seconds": round(secs, 3), "images_per_s": round(len(order) / max(secs, 1e-9), 1),
            "raw_bytes": raw, "bytes_on_disk": disk, "compression_ratio": round(raw / max(disk, 1), 3)}
