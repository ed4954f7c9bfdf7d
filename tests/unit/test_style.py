"""Style pieces: the normalised content/style objective, L-BFGS on pixels, Deep Dream's octaves and ascent,
the fast-style transformer and its loss, image loading by name and size, and the task summary."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlpipe.core.errors import DataError, ParamsError
from dlpipe.models.transformer_net import TransformerConfig, transformer_net
from dlpipe.tasks.style.common import find_image, square
from dlpipe.tasks.style.params import PairsParams
from dlpipe.tasks.style.summary import style_summary
from dlpipe.vision.dream import activation_score, deep_dream, dream_step, octave_sizes
from dlpipe.vision.loss_network import load_loss_network
from dlpipe.vision.style import FeedForwardStyleLoss, check_weights, grade, lbfgs_pixels, objective

LAYERS = ["features.1", "features.4", "features.9"]      # vgg11 relu1_1, relu2_1, relu3_1


@pytest.fixture(scope="module")
def net():
    return load_loss_network("random_vgg:vgg11", None, LAYERS, seed=3)


def _pair(size=24):
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, size)
    content = torch.stack([ramp.view(1, -1).expand(size, -1), ramp.view(-1, 1).expand(-1, size),
                           torch.full((size, size), 0.5)])[None]                   # smooth gradients
    style = torch.rand(1, 3, size, size, generator=g)                             # high-frequency texture
    return content, style


def test_objective_is_normalised_by_the_other_image(net):
    content, style = _pair()
    obj = objective(net, content, style, [0, 1, 0], [1, 1, 1])
    assert grade(obj, content) == {"content": 0.0, "style": pytest.approx(1.0)}    # the start: style 1
    assert grade(obj, style)["content"] == pytest.approx(1.0) and grade(obj, style)["style"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="one size"):
        objective(net, content, style[..., :20, :20], [0, 1, 0], [1, 1, 1])


def test_lbfgs_moves_the_style_and_keeps_pixels_in_range(net):
    content, style = _pair()
    obj = objective(net, content, style, [0, 1, 0], [1, 1, 1])
    x, hist = lbfgs_pixels(obj, content, content_weight=1.0, style_weight=10.0, n_evals=15, history_size=5)
    assert len(hist) == 15 and [h["eval"] for h in hist] == list(range(15))
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"] and grade(obj, x)["style"] < 0.5
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and x.shape == content.shape and not x.requires_grad


@pytest.mark.parametrize("content, style, match", [([0, 1], [1, 1, 1], "one weight per layer"),
                                                   ([0, 0, 0], [1, 1, 1], "at least one layer")])
def test_weights_must_match_the_layers(content, style, match):
    with pytest.raises(ParamsError, match=f"style.networks.x.content: .*{match}"):
        check_weights(LAYERS, content, style, "style.networks.x")


def test_octaves_grow_to_the_full_size_and_dreaming_raises_the_activation(net):
    assert octave_sizes(100, 60, 3, 2.0) == [(25, 15), (50, 30), (100, 60)]
    score = activation_score(net, [1])
    base = _pair(32)[0]
    g = torch.Generator().manual_seed(0)
    step = dream_step(base, score, 0.05, jitter=0, g=g)
    assert float(score(step)) > float(score(base)) and 0 <= float(step.min()) and float(step.max()) <= 1
    out = deep_dream(base, score, octaves=2, octave_scale=1.5, steps=3, step_size=0.02, jitter=2, seed=0)
    assert out.shape == base.shape and float(score(out)) > float(score(base))
    again = deep_dream(base, score, octaves=2, octave_scale=1.5, steps=3, step_size=0.02, jitter=2, seed=0)
    assert torch.equal(out, again)                                                 # seeded jitter: reproducible


@pytest.mark.parametrize("h, w", [(32, 32), (30, 45)])
def test_transformer_keeps_the_size_and_the_range(h, w):
    torch.manual_seed(0)
    net = transformer_net(TransformerConfig(nf=4, n_res=2))
    y = net(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w) and 0 < float(y.min()) and float(y.max()) < 1
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.ReflectionPad2d) for m in net.modules())


def test_feed_forward_loss_has_no_content_term_at_the_input(net):
    content, style = _pair()
    ref = torch.cat([content, content.flip(-1)])
    loss = FeedForwardStyleLoss(net, [0, 1, 0], [1, 1, 1], style, ref, content_weight=1.0, style_weight=1.0)
    c, s = loss.terms(ref, ref)
    assert float(c) == 0.0 and float(s) == pytest.approx(3.0, rel=1e-4)            # each style layer's reference = 1
    # the painting itself: no style distance, the content distance of the reference (1)
    assert float(loss(style.expand_as(ref), ref)) == pytest.approx(1.0, rel=1e-4)


def test_images_by_name_and_a_painting_smaller_than_the_crop(tmp_path):
    (tmp_path / "style").mkdir()
    Image.fromarray(np.full((40, 60, 3), 100, np.uint8)).save(tmp_path / "style" / "small.png")
    Image.fromarray(np.full((80, 120, 3), 100, np.uint8)).save(tmp_path / "style" / "big.jpg")
    assert find_image(tmp_path / "style", "big", "k").name == "big.jpg"
    with pytest.raises(ParamsError, match=r"style.pairs.style: 'nope': no such image .*\(have: big, small\)"):
        find_image(tmp_path / "style", "nope", "style.pairs.style")
    assert square(tmp_path / "style" / "big.jpg", 64, "style.gatys.size").shape == (64, 64, 3)
    with pytest.raises(DataError, match=r"small.png: 60x40 px, smaller than the 64-px crop of style.gatys.size"):
        square(tmp_path / "style" / "small.png", 64, "style.gatys.size")


def test_summary_grades_every_pair_and_the_speed_up(tmp_path):
    for c in ("a", "b"):
        d = tmp_path / "gatys" / f"{c}-s"
        d.mkdir(parents=True)
        nets = {n: {"style_fall": 0.9 + i / 100, "judge_content": 0.5, "seconds": 10.0 * (i + 1)}
                for i, n in enumerate(("backbone", "random_vgg"))}
        (d / "metrics.json").write_text(json.dumps({"content": c, "style": "s", "size": 64, "networks": nets}))
    fast = {"style": "s", "seconds_per_image": 0.05, "eval_size": 64, "style_fall": 0.4, "judge_content": 0.6,
            "photos": {"a": {"style_fall": 0.4, "judge_content": 0.6}}}
    (tmp_path / "fast.json").write_text(json.dumps(fast))
    m = style_summary(gatys=tmp_path / "gatys", fast=tmp_path / "fast.json", out=tmp_path / "out",
                      pairs=PairsParams(content=["a", "b"], style=["s"]))
    assert m["speedup"] == 200.0 and m["same_size"] and m["n_pairs"] == 2
    assert m["gatys"]["random_vgg"]["style_fall"] == 0.91
    assert "| a x s | fast transformer | 0.4 | 0.6 | 0.05 |" in (tmp_path / "out" / "results.md").read_text()
    with pytest.raises(DataError, match=r"c-s/metrics.json: metrics file not found"):
        style_summary(gatys=tmp_path / "gatys", fast=tmp_path / "fast.json", out=tmp_path / "out",
                      pairs=PairsParams(content=["c"], style=["s"]))
