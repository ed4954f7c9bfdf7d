"""Darknet: output shapes at any input size, named cuts, a splitter covering every parameter once."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from dlpipe.models.darknet import DarknetConfig, cut, darknet, darknet_splitter, layer_names
from dlpipe.train.param_groups import check_splitter

CFG = DarknetConfig(in_ch=3, nf=8, layers=(1, 2, 1), n_classes=10)


@pytest.mark.parametrize("size", [28, 32, 64, 97])
def test_logits_at_any_input_size(size):
    model = darknet(CFG).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 10)


@pytest.mark.parametrize("layer,size,shape", [
    ("stem", 28, (8, 28, 28)), ("group0", 28, (16, 14, 14)), ("group1", 28, (32, 7, 7)),
    ("group2", 28, (64, 4, 4)), ("group2", 97, (64, 13, 13)), ("pool", 97, (64,)), ("head", 32, (10,)),
])
def test_named_cuts(layer, size, shape):
    model = darknet(CFG).eval()
    with torch.no_grad():
        out = cut(model, layer)(torch.randn(2, 3, size, size))
    assert tuple(out.shape) == (2, *shape)


def test_cut_shares_weights_and_matches_full_model():
    model = darknet(CFG).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        feats = cut(model, "pool")(x)
        assert torch.allclose(model.head(feats), model(x))
    assert cut(model, "pool").group0 is model.group0


def test_unknown_layer_lists_names():
    with pytest.raises(ValueError, match="no layer 'fc' in Darknet .*stem, group0, group1, group2, pool, head"):
        cut(darknet(CFG), "fc")


@pytest.mark.parametrize("layers,early,late", [
    ((1,), ["stem"], ["group0"]), ((1, 2), ["stem", "group0"], ["group1"]),
    ((1, 2, 4), ["stem", "group0"], ["group1", "group2"]), ((1, 2, 4, 6, 3), ["stem", "group0", "group1"],
                                                            ["group2", "group3", "group4"]),
])
def test_splitter(layers, early, late):
    model = darknet(dataclasses.replace(CFG, layers=layers))
    groups = model.splitter(model)
    check_splitter(model, groups)
    assert groups == darknet_splitter(model) and len(groups) == 3
    ids = lambda names: [id(p) for n in names for p in getattr(model, n).parameters()]
    assert [id(p) for p in groups[0]] == ids(early)
    assert [id(p) for p in groups[1]] == ids(late)
    assert [id(p) for p in groups[2]] == ids(["head"])


def test_res_layer_is_residual_and_conv_has_no_bias():
    model = darknet(CFG)
    assert layer_names(model) == ["stem", "group0", "group1", "group2", "pool", "head"]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.bias is None for c in convs)
    res = model.group1[1]
    for p in res.parameters():        # zero branch -> identity
        torch.nn.init.zeros_(p)
    x = torch.randn(1, 32, 5, 5)
    assert torch.equal(res(x), x)


@pytest.mark.parametrize("layer,shape", [("pool", (512,)), ("layer3", (256, 4, 4))])
def test_torchvision_cut(layer, shape):
    """The cut used for `backbone.weights: torchvision:resnet18` (architecture only: no download in tests)."""
    import torchvision

    from dlpipe.vision.features import cut_torchvision

    body = cut_torchvision(torchvision.models.get_model("resnet18", weights=None), layer, "resnet18").eval()
    with torch.no_grad():
        assert tuple(body(torch.randn(2, 3, 64, 64)).shape) == (2, *shape)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        cut_torchvision(torchvision.models.get_model("resnet18", weights=None), "nope", "resnet18")
