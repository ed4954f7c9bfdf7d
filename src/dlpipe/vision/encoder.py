"""A pretrained backbone as a multi-scale encoder: the outputs of chosen layers ("taps"), input side first.

Sources (params ``unet.encoder``, or the ``key`` a caller names, e.g. a loss network; the file comes from dvc.yaml):

* ``weights: null`` — a Darknet file (:func:`dlpipe.io.checkpoint.save_model` format): ours from
  ``export_backbone`` (CIFAR-10, the default) or ``pretrain_backbone`` (MNIST digits). Taps are the
  Darknet's named children (``stem``, ``group0``...).
* ``weights: "torchvision:<arch>"`` — torchvision's architecture with the state_dict in the file
  (ImageNet weights a user already has; never a download). Taps are graph nodes (``relu``, ``layer1``...).

The encoder normalises its 0-1 input itself (the backbone's stats travel in its spec), so one dataset
serves every source; a one-channel (MNIST) backbone sees the images' luminance. ``spec`` is plain data
saved inside a model file, from which :func:`build_encoder` rebuilds the same network::

    x (bs, 3, H, W) 0-1 -> normalise -> tap 0 (bs, c0, H/s0, W/s0), tap 1 (bs, c1, H/s1, W/s1), ...
"""
from __future__ import annotations

import os
from collections import OrderedDict

import torch
from torch import nn

from dlpipe.core.errors import ParamsError

IMAGENET_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


class Normalize(nn.Module):
    """(x - mean) / std per channel; to one channel (luminance) first when the backbone is grayscale."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean.shape[1] == 1 and x.shape[1] == 3:
            x = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)   # (bs, 1, H, W)
        return (x - self.mean) / self.std


class SequentialTaps(nn.Module):
    """A Sequential's named children up to the last tap, run in order, returning each tap's output."""

    def __init__(self, body: nn.Sequential, taps: list[str], key: str = "unet.encoder"):
        super().__init__()
        names = [n for n, _ in body.named_children()]
        missing = [t for t in taps if t not in names]
        if missing or [t for t in names if t in taps] != list(taps):
            raise ParamsError(f"{key}.taps: {list(taps)}: expected layers of the backbone in input-to-output "
                              f"order, from: {', '.join(names)}")
        keep = names[: names.index(taps[-1]) + 1]
        self.body = nn.Sequential(OrderedDict((n, getattr(body, n)) for n in keep))
        self.taps = list(taps)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for name, layer in self.body.named_children():
            x = layer(x)
            if name in self.taps:
                out.append(x)
        return out

    def stages(self) -> list[nn.Module]:
        return list(self.body.children())


class GraphTaps(nn.Module):
    """torchvision's feature extractor over graph nodes, returning a list in tap order."""

    def __init__(self, model: nn.Module, taps: list[str], arch: str, key: str = "unet.encoder"):
        super().__init__()
        from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

        nodes = get_graph_node_names(model)[1]
        bad = [t for t in taps if not any(n == t or n.startswith(t + ".") for n in nodes)]   # a module = its last node
        if bad:
            raise ParamsError(f"{key}.taps: {bad} are not nodes of torchvision:{arch} (e.g. {', '.join(nodes[:12])})")
        self.taps = list(taps)
        self.body = create_feature_extractor(model, return_nodes={t: t for t in taps})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        d = self.body(x)
        return [d[t] for t in self.taps]

    def stages(self) -> list[nn.Module]:
        return [m for n, m in self.body.named_children()]


class Encoder(nn.Module):
    """Normalise, then the taps. ``channels``/``strides`` per tap are measured on a 64 x 64 input."""

    def __init__(self, norm: Normalize, taps: nn.Module, spec: dict):
        super().__init__()
        self.norm, self.taps, self.spec = norm, taps, spec
        with torch.no_grad():
            was = self.training
            self.eval()
            feats = self(torch.zeros(1, 3, 64, 64))
            self.train(was)
        self.channels = [int(f.shape[1]) for f in feats]
        self.strides = [64 // int(f.shape[-1]) for f in feats]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.taps(self.norm(x))

    def param_groups(self) -> list[list[nn.Parameter]]:
        """[input-side half of the layers], [the rest] (for discriminative lrs and freezing)."""
        stages = [s for s in self.taps.stages() if any(True for _ in s.parameters())]
        half = max(1, len(stages) // 2)
        return [[p for s in stages[:half] for p in s.parameters()], [p for s in stages[half:] for p in s.parameters()]]


def build_encoder(spec: dict, key: str = "unet.encoder") -> Encoder:
    """The encoder of ``spec`` with freshly initialised weights (a model file's weights load over it)."""
    if spec["kind"] == "darknet":
        from dlpipe.models.darknet import DarknetConfig, darknet
        cfg = {**spec["darknet"], "layers": tuple(spec["darknet"]["layers"])}
        taps = SequentialTaps(darknet(DarknetConfig(**cfg)), spec["taps"], key)
    elif spec["kind"] == "torchvision":
        import torchvision
        taps = GraphTaps(torchvision.models.get_model(spec["arch"], weights=None), spec["taps"], spec["arch"], key)
    else:
        raise ValueError(f"encoder spec: unknown kind {spec['kind']!r}")
    return Encoder(Normalize(spec["mean"], spec["std"]), taps, spec)


def load_encoder(weights: str | None, path: str | os.PathLike, taps: list[str], pretrained: bool = True,
                 key: str = "unet.encoder") -> tuple[Encoder, dict]:
    """The encoder from a backbone file, and what it is (``source``, ``sha256`` of the file...).

    ``pretrained=False`` keeps the architecture and normalisation but not the weights (the
    from-scratch ablation). ``key`` is the params section errors name.
    """
    from dlpipe.io.checkpoint import load_model, load_state_strict

    if not os.path.isfile(path):
        raise ParamsError(f"{key}: backbone file {path} not found (weights {weights!r}; never downloaded)")
    if weights is None:
        blob = load_model(path)
        extra = blob["extra"]
        if "normalize" not in extra:
            raise ParamsError(f"{key}: {path} is not a Darknet backbone file (no normalisation stats in it)")
        spec = {"kind": "darknet", "darknet": dict(blob["config"]), "taps": list(taps),
                "mean": list(extra["normalize"]["mean"]), "std": list(extra["normalize"]["std"])}
        source = f"darknet:{extra.get('source', 'mnist')}"
        enc = build_encoder(spec, key)
        if pretrained:
            from dlpipe.models.darknet import load_darknet
            net, _ = load_darknet(path)
            enc.taps.body.load_state_dict({k: v for k, v in net.state_dict().items()
                                           if k.split(".")[0] in dict(enc.taps.body.named_children())})
    elif weights.startswith("torchvision:"):
        arch = weights.split(":", 1)[1]
        spec = {"kind": "torchvision", "arch": arch, "taps": list(taps),
                "mean": IMAGENET_STATS[0], "std": IMAGENET_STATS[1]}
        source = weights
        enc = build_encoder(spec, key)
        if pretrained:
            import torchvision
            model = torchvision.models.get_model(arch, weights=None)
            sd = torch.load(path, map_location="cpu", weights_only=True)
            load_state_strict(model, sd.get("state_dict", sd) if isinstance(sd, dict) else sd, str(path))
            enc = Encoder(Normalize(spec["mean"], spec["std"]), GraphTaps(model, spec["taps"], arch, key), spec)
    else:
        raise ParamsError(f"{key}.weights: expected null (a Darknet file) or 'torchvision:<arch>', got {weights!r}")
    info = {"source": source if pretrained else f"{source} (random init)",
            "taps": list(taps), "channels": enc.channels, "strides": enc.strides, "pretrained": pretrained}
    return enc, info
