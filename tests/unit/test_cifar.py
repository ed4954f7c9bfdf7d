"""The CIFAR-10 task: decoding and its errors, Darknet taps, one-cycle points, augmentation, time to
accuracy, mistakes ranking, backbone export -> load round trip."""
from __future__ import annotations

import io
import math
import tarfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlpipe.core.errors import DataError
from dlpipe.io.checkpoint import save_model
from dlpipe.models.darknet import DarknetConfig, cut, darknet
from dlpipe.tasks.cifar.decode import CLASSES, decode_cifar
from dlpipe.tasks.cifar.export import export_backbone, feature_taps
from dlpipe.tasks.cifar.params import DecodeParams
from dlpipe.tasks.cifar.train import most_confident_mistakes, per_class_accuracy, time_to_accuracy
from dlpipe.train.schedules import one_cycle
from dlpipe.vision.features import load_backbone
from dlpipe.vision.transforms import ImageArrayDataset

fault = partial(pytest.mark.fault, "Bad data")


def jpeg(color, size=32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def cifar_archive(path: Path, n: int = 2, top: str = "", extra: dict | None = None) -> Path:
    """train/<class>/000i.jpg and test/<class>/000i.jpg for the ten classes (class i: grey level 20 i)."""
    members = {f"{top}README.md": b"CIFAR-10 images"}
    for split in ("train", "test"):
        for c, name in enumerate(CLASSES):
            for i in range(n):
                members[f"{top}{split}/{name}/{i:04d}.jpg"] = jpeg((20 * c, 20 * c, 20 * c))
    members.update(extra or {})
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("top", ["", "CIFAR-10-images-d7d0/"])     # the mirror's repack, GitHub's archive
def test_decode_labels_in_standard_order(tmp_path, top):
    m = decode_cifar(src=cifar_archive(tmp_path / "c.tgz", n=3, top=top), out=tmp_path / "out",
                     p=DecodeParams(seed=0, max_per_class=2))
    x, y = np.load(tmp_path / "out/train_images.npy"), np.load(tmp_path / "out/train_labels.npy")
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8 and m["n_train"] == m["n_test"] == 20
    assert np.bincount(y).tolist() == [2] * 10
    assert all(abs(int(x[i].mean()) - 20 * int(y[i])) <= 2 for i in range(len(y)))    # class i = grey 20 i
    assert (tmp_path / "out/classes.txt").read_text().split() == list(CLASSES)


@pytest.mark.parametrize("extra,match", [
    ({"valid/cat/0000.jpg": jpeg((1, 2, 3))}, r"unexpected image path 'valid/cat/0000\.jpg'"),
    ({"train/kitten/0000.jpg": jpeg((1, 2, 3))}, r"unexpected class folder 'train/kitten'"),
    ({"train/cat/0002.jpg": b"not a jpeg"}, r"c\.tgz:train/cat/0002\.jpg: image does not decode"),
    ({"test/dog/0002.jpg": jpeg((1, 2, 3), size=40)}, r"test/dog/0002\.jpg: expected a 32x32 image, got 40x40"),
])
@fault("cifar10_jpg archive with an unexpected folder or class, an undecodable or non-32x32 image: DataError naming it")
def test_decode_rejects_bad_archives(tmp_path, extra, match):
    with pytest.raises(DataError, match=match):
        decode_cifar(src=cifar_archive(tmp_path / "c.tgz", extra=extra), out=tmp_path / "out",
                     p=DecodeParams(seed=0, max_per_class=None))


def test_darknet_taps_channels_and_strides():
    net = darknet(DarknetConfig(in_ch=3, nf=8, layers=(1, 2, 1), n_classes=10))
    assert feature_taps(net) == [{"layer": "stem", "channels": 8, "stride": 1},
                                 {"layer": "group0", "channels": 16, "stride": 2},
                                 {"layer": "group1", "channels": 32, "stride": 4},
                                 {"layer": "group2", "channels": 64, "stride": 8},
                                 {"layer": "pool", "channels": 64, "stride": None}]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("pct,lr,mom", [
    (0.0, 1 / 25, 0.95), (0.125, (1 / 25 + 1) / 2, 0.90), (0.25, 1.0, 0.85),
    (0.625, (1 + 1e-4) / 2, 0.90), (1.0, 1e-4, 0.95)])
def test_one_cycle_points(pct, lr, mom):
    got = one_cycle(pct, div=25.0, div_final=1e4, pct_start=0.25, moms=(0.95, 0.85))
    assert got == pytest.approx((lr, mom), abs=1e-9)


def test_augmentation_keeps_labels_shapes_and_pixels():
    img = np.arange(2 * 32 * 32 * 3, dtype=np.uint8).reshape(2, 32, 32, 3)
    flip = ImageArrayDataset(img, np.array([3, 7]), 3, [0.5] * 3, [0.25] * 3, flip=True)
    base = flip.x[0]
    torch.manual_seed(0)
    seen = {bool(torch.equal(flip[0][0], base.flip(-1))) for _ in range(40)}
    assert seen == {True, False}                                   # both orientations, nothing else
    assert all(torch.equal(x, base) or torch.equal(x, base.flip(-1)) for x in (flip[0][0] for _ in range(20)))
    crop = ImageArrayDataset(img, np.array([3, 7]), 3, [0.5] * 3, [0.25] * 3, pad=4, flip=True)
    for i, label in enumerate([3, 7]):
        x, y = crop[i]
        assert x.shape == (3, 32, 32) and int(y) == label


def test_time_to_accuracy_from_history():
    secs, accs = [10.0, 12.0, 11.0, 9.5], [0.62, 0.81, 0.79, 0.86]
    assert time_to_accuracy(secs, accs, [0.8, 0.85, 0.9]) == {"0.80": 22.0, "0.85": 42.5, "0.90": None}


def test_mistakes_ranked_by_confidence_and_per_class():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    y = np.array([1, 1, 0, 1])
    assert most_confident_mistakes(probs, y, 5).tolist() == [0, 3, 2]
    assert per_class_accuracy(y, probs.argmax(1), ["a", "b"]) == {"a": 0.0, "b": 0.3333}


def test_export_then_load_backbone_round_trip(tmp_path):
    torch.manual_seed(0)
    net = darknet(DarknetConfig(in_ch=3, nf=8, layers=(1, 1), n_classes=10)).eval()
    norm = {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}
    save_model(tmp_path / "model.pt", net, {"in_ch": 3, "nf": 8, "layers": [1, 1], "n_classes": 10},
               extra={"normalize": norm, "classes": list(CLASSES)})
    (tmp_path / "m.json").write_text('{"accuracy": 0.5, "accuracy_tta": 0.52}')
    m = export_backbone(model=tmp_path / "model.pt", metrics_in=tmp_path / "m.json", out=tmp_path / "bb.pt")
    assert m["accuracy"] == 0.52 and m["taps"] == ["stem", "group0", "group1", "pool"]
    body, info = load_backbone(None, tmp_path / "bb.pt", "group1")
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(body(x), cut(net, "group1")(x)) and body(x).shape == (2, 32, 8, 8)
    assert info["mean"] == norm["mean"] and info["std"] == norm["std"] and not math.isnan(info["in_ch"])
    assert info["backbone"] == "darknet:cifar"                      # the feature store's meta names the source
    assert load_backbone(None, tmp_path / "model.pt", "pool")[1]["backbone"] == "darknet"   # no source recorded


def test_torchvision_backbone_from_a_local_state_dict(tmp_path):
    """backbone.weights torchvision:resnet18 loads the user's file into torchvision's architecture (never a download)."""
    import torchvision

    from dlpipe.core.errors import ParamsError

    torch.manual_seed(1)
    ref = torchvision.models.get_model("resnet18", weights=None).eval()
    torch.save(ref.state_dict(), tmp_path / "resnet18.pth")
    body, info = load_backbone("torchvision:resnet18", None, "layer3", weights_path=tmp_path / "resnet18.pth")
    x = torch.randn(1, 3, 64, 64)
    want = torch.nn.Sequential(*list(ref.children())[:7])(x)       # conv1 .. layer3
    assert torch.allclose(body(x), want) and info["backbone"] == "torchvision:resnet18" and info["std"][0] == 0.229
    # precompute passes its params' backbone file as the checkpoint: that is the state_dict when weights_path is null
    body2, _ = load_backbone("torchvision:resnet18", tmp_path / "resnet18.pth", "layer3")
    assert torch.allclose(body2(x), want)
    with pytest.raises(ParamsError, match=r"weights_path: backbone torchvision:resnet18 needs a local state_dict file"):
        load_backbone("torchvision:resnet18", None, "pool", weights_path=None)
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "wrong.pth")
    with pytest.raises(Exception, match="wrong.pth"):
        load_backbone("torchvision:resnet18", None, "pool", weights_path=tmp_path / "wrong.pth")
