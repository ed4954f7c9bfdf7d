"""Super-resolution pieces: EDSR's shapes and its bicubic start, ICNR pixel shuffle with 3x3 kernels, the
benchmarks' quality measures (Y channel, border, bicubic) against known values and a second library, the
patch pipeline, and the loss network with its Gram and perceptual losses."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dlpipe.core.errors import DataError, ParamsError
from dlpipe.io.checkpoint import save_model
from dlpipe.models.darknet import DarknetConfig, darknet
from dlpipe.models.edsr import EdsrConfig, edsr, upsampler
from dlpipe.vision.images import load_image
from dlpipe.vision.loss_network import PerceptualLoss, content_loss, gram, load_loss_network, style_loss
from dlpipe.vision.sr_data import PatchDataset, dihedral
from dlpipe.vision.sr_quality import (bicubic_resize, downscale, edge_energy, mod_crop, psnr_y, rgb_to_y, ssim_y,
                                      to_uint8)

SET5 = "sr_benchmarks/Set5"


# ---- EDSR and its upsampler -----------------------------------------------------------------------
@pytest.mark.parametrize("scale, h, w", [(2, 12, 17), (4, 9, 10), (8, 5, 6)])
def test_edsr_output_is_scale_times_the_input_and_starts_at_bicubic(scale, h, w):
    torch.manual_seed(0)
    net = edsr(EdsrConfig(scale=scale, nf=8, n_blocks=2, res_scale=0.1))
    x = torch.rand(2, 3, h, w)
    out = net(x)
    assert out.shape == (2, 3, scale * h, scale * w)
    # the zero-initialised tail: step 0 is exactly bicubic, so training can only improve on it
    torch.testing.assert_close(out, F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False))
    plain = edsr(EdsrConfig(scale=scale, nf=8, n_blocks=2, res_scale=0.1, bicubic_skip=False))
    assert plain(x).shape == out.shape and not torch.allclose(plain(x), out)


def test_edsr_rejects_a_scale_that_is_not_a_power_of_two():
    with pytest.raises(ValueError, match="power of 2"):
        edsr(EdsrConfig(scale=3, nf=4, n_blocks=0, res_scale=1.0))


@pytest.mark.parametrize("scale", [2, 4])
def test_icnr_upsampler_equals_nearest_upsampling_of_one_subconv(scale):
    """At init each pixel-shuffle step is nearest-neighbour upsampling of one 3x3 conv: no checkerboard."""
    torch.manual_seed(0)
    up = upsampler(6, scale)
    x = torch.randn(1, 6, 5, 7)
    out, ref = x, x
    for conv, shuffle in zip(up[0::2], up[1::2]):
        out = shuffle(conv(out))
        sub = F.conv2d(ref, conv.weight[::4], conv.bias[::4], padding=1)     # one of each 4 identical kernels
        ref = F.interpolate(sub, scale_factor=2, mode="nearest")
        torch.testing.assert_close(out, ref)
    assert up(x).shape == (1, 6, 5 * scale, 7 * scale)


# ---- quality measures -----------------------------------------------------------------------------
def test_y_channel_is_bt601_of_the_0_255_image():
    rgb = torch.tensor([[0.0, 255.0, 0.0, 255.0], [0.0, 0.0, 255.0, 255.0], [0.0, 0.0, 0.0, 255.0]]).view(3, 1, 4)
    torch.testing.assert_close(rgb_to_y(rgb).view(-1), torch.tensor([16.0, 16 + 65.481, 16 + 128.553, 235.0],
                                                                    dtype=torch.float64))


def test_psnr_and_ssim_on_known_cases_and_a_second_library():
    from skimage.metrics import peak_signal_noise_ratio
    from torchmetrics.functional.image import structural_similarity_index_measure

    hr = np.full((20, 24, 3), 128, np.uint8)
    plus1 = hr + 1
    # every channel +1 moves Y by (65.481 + 128.553 + 24.966) / 255 = 219 / 255
    assert psnr_y(plus1, hr, 2) == pytest.approx(20 * math.log10(255 / (219 / 255)), abs=1e-4)   # torchmetrics: float32
    assert ssim_y(hr, hr, 2) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ya, yb = (rgb_to_y(torch.from_numpy(i).permute(2, 0, 1))[0, 3:-3, 3:-3].numpy() for i in (a, b))
    assert psnr_y(b, a, 3) == pytest.approx(peak_signal_noise_ratio(ya, yb, data_range=255), abs=1e-5)
    # torchmetrics pads borders by reflection where Wang et al. keep the window inside: close, not equal
    tm = float(structural_similarity_index_measure(torch.from_numpy(yb)[None, None], torch.from_numpy(ya)[None, None],
                                                   data_range=255.0, sigma=1.5, kernel_size=11))
    assert ssim_y(b, a, 3) == pytest.approx(tm, abs=2e-3) and 0.9 < ssim_y(b, a, 3) < 1.0
    assert psnr_y(b, a, 3) != pytest.approx(psnr_y(b, a, 0), abs=1e-6)    # the border really is shaved


def test_bicubic_baseline_reproduces_the_published_set5_numbers(mirror):
    """Set5 bicubic Y-PSNR: 33.66 (x2) and 28.42 (x4) in the SRCNN/VDSR/EDSR tables."""
    images = [load_image(f, "RGB") for f in sorted((mirror / SET5).glob("*.png"))]
    for scale, published in ((2, 33.66), (4, 28.42)):
        scores = []
        for img in images:
            hr = mod_crop(img, scale)
            lr = downscale(hr, scale)
            assert lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
            scores.append(psnr_y(bicubic_resize(lr, hr.shape[:2]), hr, scale))
        assert np.mean(scores) == pytest.approx(published, abs=0.03)


def test_bicubic_matches_pil_and_downscale_needs_a_mod_crop():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (30, 42, 3), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(img).resize((21, 15), Image.BICUBIC))
    np.testing.assert_array_equal(bicubic_resize(img, (15, 21)), ref)
    assert mod_crop(rng.integers(0, 256, (31, 43, 3), dtype=np.uint8), 4).shape == (28, 40, 3)
    with pytest.raises(ValueError, match="multiple of scale 4"):
        downscale(img[:30, :42], 4)


def test_edge_energy_falls_with_blur_and_to_uint8_rounds_and_clamps():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    blurred = bicubic_resize(bicubic_resize(img, (8, 8)), (32, 32))
    assert edge_energy(blurred) < 0.5 * edge_energy(img)
    x = torch.tensor([-0.1, 0.5, 1.2, 0.002]).view(1, 1, 4).expand(3, 1, 4)
    assert to_uint8(x)[0, :, 0].tolist() == [0, 128, 255, 1]


# ---- patches ---------------------------------------------------------------------------------------
def test_dihedral_gives_eight_distinct_views_of_the_same_pixels():
    img = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    views = {dihedral(img, k).tobytes() + bytes(dihedral(img, k).shape) for k in range(8)}
    assert len(views) == 8 and all(sorted(dihedral(img, k).ravel()) == list(range(6)) for k in range(8))


def test_patches_are_bicubic_pairs_of_crops_and_progressive_resizing_shrinks_them():
    rng = np.random.default_rng(3)
    photos = [rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)]
    train = PatchDataset(photos, scale=4, patch=32, train=True, repeat=3)
    assert len(train) == 6
    torch.manual_seed(0)
    lr, hr = train[1]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 32, 32) and 0.0 <= float(hr.min()) <= float(hr.max()) <= 1.0
    hr_u8 = (hr * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(lr.numpy(), torch.from_numpy(np.array(downscale(hr_u8, 4))).permute(2, 0, 1).float().numpy() / 255)
    train.base = 0.5
    assert train[0][1].shape == (3, 16, 16) and train[0][0].shape == (3, 4, 4)
    valid = PatchDataset(photos, scale=4, patch=32, train=False, repeat=3)
    assert len(valid) == 2 and torch.equal(valid[0][1], valid[0][1])            # centre crops: fixed
    with pytest.raises(ValueError, match="smaller than the 48-px patch"):
        PatchDataset(photos, scale=4, patch=48, train=True)
    with pytest.raises(ValueError, match="not a multiple of scale"):
        PatchDataset(photos, scale=4, patch=30, train=True)


# ---- loss network ----------------------------------------------------------------------------------
def test_gram_on_a_hand_computed_case():
    f = torch.tensor([[1.0, 2.0], [0.0, 1.0]]).view(1, 2, 1, 2)      # c = 2 channels, h w = 2 positions
    # F F^T / (c h w): [[1+4, 0+2], [2, 1]] / 4
    torch.testing.assert_close(gram(f), torch.tensor([[[5.0, 2.0], [2.0, 1.0]]]) / 4)


def test_content_and_style_losses_are_weighted_mses():
    torch.manual_seed(0)
    a, b = [torch.rand(2, 3, 4, 4)], [torch.rand(2, 3, 4, 4)]
    torch.testing.assert_close(content_loss(a, b, [2.0]), 2.0 * F.mse_loss(a[0], b[0]))
    g = gram(b[0][:1])                                                 # one style image broadcasts over the batch
    torch.testing.assert_close(style_loss(a, [g], [3.0]), 3.0 * F.mse_loss(gram(a[0]), g.expand(2, 3, 3)))
    assert float(style_loss(b[:1], [gram(b[0])], [1.0])) == 0.0


def _darknet_file(path: Path) -> torch.nn.Module:
    torch.manual_seed(1)
    net = darknet(DarknetConfig(in_ch=3, nf=4, layers=(1, 1), n_classes=10))
    save_model(path, net, {"in_ch": 3, "nf": 4, "layers": [1, 1], "n_classes": 10},
               extra={"normalize": {"mean": [0.4] * 3, "std": [0.2] * 3}, "source": "cifar"})
    return net


def test_backbone_loss_network_taps_are_frozen_and_stay_in_eval_mode(tmp_path):
    _darknet_file(tmp_path / "bb.pt")
    ln = load_loss_network("backbone", tmp_path / "bb.pt", ["stem", "group0", "group1"], key="superres.loss_network")
    assert ln.info["strides"] == [1, 2, 4] and ln.info["source"] == "darknet:cifar"
    assert not any(p.requires_grad for p in ln.parameters())
    ln.train()
    assert not any(m.training for m in ln.modules())        # BN statistics are part of the fixed loss
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    feats = ln(x)
    assert [tuple(f.shape) for f in feats] == [(2, 4, 16, 16), (2, 8, 8, 8), (2, 16, 4, 4)]
    sum(f.sum() for f in feats).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0     # gradients reach the image (Gatys optimises pixels)
    with pytest.raises(ParamsError, match="superres.loss_network.taps"):
        load_loss_network("backbone", tmp_path / "bb.pt", ["group0", "stem"], key="superres.loss_network")
    with pytest.raises(ParamsError, match="superres.loss_network: .*not found"):
        load_loss_network("backbone", tmp_path / "none.pt", ["stem"], key="superres.loss_network")


def test_random_vgg_is_seeded_and_torchvision_weights_load_from_a_local_file(tmp_path):
    import torchvision

    layers = ["features.3", "features.8"]                    # relu1_2, relu2_2
    a = load_loss_network("random_vgg:vgg11", None, ["features.1", "features.4"], seed=5)
    b = load_loss_network("random_vgg:vgg11", None, ["features.1", "features.4"], seed=5)
    c = load_loss_network("random_vgg:vgg11", None, ["features.1", "features.4"], seed=6)
    x = torch.rand(1, 3, 32, 32)
    assert all(torch.equal(p, q) for p, q in zip(a(x), b(x))) and not torch.equal(a(x)[1], c(x)[1])
    assert a.info["strides"] == [1, 2] and "seed 5" in a.info["source"]
    # ImageNet weights a user has: a state_dict file (here a seeded random resnet18, never a download)
    torch.manual_seed(2)
    model = torchvision.models.resnet18(weights=None).eval()
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    ln = load_loss_network("torchvision:resnet18", tmp_path / "r18.pth", ["relu", "layer1"], key="style.loss_network")
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = model.layer1(model.maxpool(model.relu(model.bn1(model.conv1((x - mean) / std)))))
    torch.testing.assert_close(ln(x)[1], ref)
    with pytest.raises(ParamsError, match="style.loss_network.source"):
        load_loss_network("random_vgg:resnet18", None, layers, key="style.loss_network")
    with pytest.raises(ParamsError, match="expected backbone, random_vgg"):
        load_loss_network("imagenet", None, layers)


def test_torchvision_vgg_weights_load_from_a_local_file(tmp_path):
    """The papers' loss network for users with ImageNet weights: a VGG state_dict file (here a seeded random
    VGG11's, written by the test; never a download) loads into torchvision's VGG, features tapped by node."""
    import torchvision

    torch.manual_seed(4)
    model = torchvision.models.vgg11(weights=None).eval()
    torch.save(model.state_dict(), tmp_path / "vgg11.pth")
    ln = load_loss_network("torchvision:vgg11", tmp_path / "vgg11.pth", ["features.1", "features.4"],
                           key="superres.loss_network")
    x = torch.rand(1, 3, 24, 24)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = model.features[:5]((x - mean) / std)
    torch.testing.assert_close(ln(x)[1], ref)
    assert ln.info["source"] == "torchvision:vgg11" and ln.info["strides"] == [1, 2]


def test_perceptual_loss_is_zero_at_the_target_and_pixel_l1_without_features(tmp_path):
    _darknet_file(tmp_path / "bb.pt")
    ln = load_loss_network("backbone", tmp_path / "bb.pt", ["stem", "group0"])
    torch.manual_seed(0)
    y, t = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    full = PerceptualLoss(ln, [1.0, 1.0], pixel_weight=1.0, gram_weight=10.0)
    assert float(full(t, t)) == 0.0 and float(full(y, t)) > float(F.l1_loss(y, t))
    torch.testing.assert_close(PerceptualLoss(ln, [0.0, 0.0], 1.0, 0.0)(y, t), F.l1_loss(y, t))
    with pytest.raises(ParamsError, match="one per loss layer"):
        PerceptualLoss(ln, [1.0], 1.0, 0.0)


@pytest.mark.fault("Bad data", "index_photos over a file that does not decode: one line naming the file, no index "
                   "left behind; photos too small for a patch are left out and counted; n_valid >= the photos: the key")
def test_index_photos_names_a_bad_file_and_leaves_out_small_ones(tmp_path):
    from dlpipe.tasks.superres.index import index_photos, load_photos
    from dlpipe.tasks.superres.params import IndexParams

    src = tmp_path / "photos"
    (src / "a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, side in enumerate([80, 90, 70, 40]):
        Image.fromarray(rng.integers(0, 256, (side, side + 5, 3), dtype=np.uint8)).save(src / "a" / f"p{i}.png")
    p = IndexParams(n_valid=1, min_side=64, max_images=None, seed=0)
    m = index_photos(out=tmp_path / "idx", src=[src], p=p)
    assert (m["n_photos"], m["n_train"], m["n_valid"], m["too_small"]) == (3, 2, 1, 1)
    assert [im.shape[2] for im in load_photos(tmp_path / "idx", "train")] == [3, 3]
    with pytest.raises(DataError, match="smaller than 85 px"):
        load_photos(tmp_path / "idx", "train", min_side=85)
    (src / "a" / "p1.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"p1\.png: image does not decode"):
        index_photos(out=tmp_path / "idx2", src=[src], p=p)
    assert not (tmp_path / "idx2").exists() and not list(tmp_path.glob(".tmp-idx2*"))   # nothing half-written
    (src / "a" / "p1.png").unlink()
    with pytest.raises(ParamsError, match="superres.index.n_valid: 9: expected fewer than the 3"):
        index_photos(out=tmp_path / "idx3", src=[src], p=IndexParams(n_valid=9, min_side=8, max_images=None, seed=0))
