"""The style stages through their CLIs on the real style photos and paintings (tiny scale): Gatys on both
loss networks graded by the judge, Deep Dream, a fast-style run SIGKILLed mid-training that resumes to the
same metrics, the summary; bad names, sizes and layers end in one line naming the file or params key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from stage_runs import (kill_train_then_resume, make_cifar_backbone, metrics_without, run_stage, stage_cmd,
                        stage_fails, tiny_params)

pytestmark = pytest.mark.slow
TIMING = ("train_seconds", "seconds_per_image", "eval_seconds")
PHOTOS = ("raccoon_voc/images", "afhq_cat_dog_wild", "style_transfer/content")


@pytest.fixture(scope="module")
def work(mirror, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("style")
    params = tiny_params(root / "p")
    run_stage("index_photos", "--params", params, root / "photos", *[mirror / p for p in PHOTOS],
              "--metrics", root / "index.json")
    return {"root": root, "params": params, "photos": root / "photos", "images": mirror / "style_transfer",
            "backbone": make_cifar_backbone(root / "bb.pt", params)}


def _gatys_cmd(w: dict, out: Path, content="tubingen", style="starry_night", params: Path | None = None):
    return stage_cmd("gatys", "--params", params or w["params"], w["images"], w["backbone"], out / "images",
                     out / "plots", "--content", content, "--style", style, "--metrics", out / "metrics.json")


def _fast_cmd(w: dict, out: Path, params: Path | None = None):
    return stage_cmd("train_fast_style", "--params", params or w["params"], w["photos"], w["images"], w["backbone"],
                     out / "model.pt", out / "styled", out / "plots", "--log-dir", out / "log", "--run-dir", out / "run",
                     "--metrics", out / "metrics.json")


def test_gatys_grades_both_networks_and_the_summary_compares_with_fast_style(work, tmp_path):
    gatys = tmp_path / "gatys"
    for c in ("tubingen", "golden_gate"):
        for s in ("starry_night", "the_scream"):
            run_stage("gatys", *_gatys_cmd(work, gatys / f"{c}-{s}", c, s)[2:])
    m = json.loads((gatys / "tubingen-starry_night" / "metrics.json").read_text())
    assert set(m["networks"]) == {"backbone", "random_vgg"} and m["init"] == "content"
    for r in m["networks"].values():
        assert 0.0 < r["style_fall"] <= 1.0 and r["judge_content"] >= 0.0 and r["evals_per_s"] > 0
    assert sorted(p.name for p in (gatys / "tubingen-starry_night" / "images").iterdir()) == ["backbone.png", "random_vgg.png"]
    for png in ("side_by_side.png", "loss_curves.png"):
        assert (gatys / "tubingen-starry_night" / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    fast = tmp_path / "fast"
    run_stage("train_fast_style", *_fast_cmd(work, fast)[2:])
    f = json.loads((fast / "metrics.json").read_text())
    assert set(f["photos"]) == {"amber", "golden_gate", "hoovertowernight", "tubingen"} and f["seconds_per_image"] > 0
    assert len(list((fast / "styled").glob("*.png"))) == 4 and (fast / "plots" / "stylised.png").is_file()
    out = tmp_path / "summary"
    run_stage("style_summary", "--params", work["params"], gatys, fast / "metrics.json", out, "--metrics", out / "m.json")
    s = json.loads((out / "m.json").read_text())
    assert s["n_pairs"] == 4 and s["same_size"] and s["speedup"] > 1       # even at 32 px, one pass beats L-BFGS
    assert s["gatys"]["backbone"]["style_fall"] == pytest.approx(sum(json.loads(
        (gatys / p / "metrics.json").read_text())["networks"]["backbone"]["style_fall"] for p in
        ("tubingen-starry_night", "tubingen-the_scream", "golden_gate-starry_night", "golden_gate-the_scream")) / 4, abs=1e-4)


def test_deep_dream_raises_the_dreamt_layers(work, tmp_path):
    run_stage("deep_dream", "--params", work["params"], work["images"], work["backbone"], tmp_path / "out",
              tmp_path / "plots", "--metrics", tmp_path / "m.json")
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["activation_gain"] > 1.0 and all(r["pixel_change"] > 0 for r in m["images"].values())
    assert len(list((tmp_path / "out").glob("*.png"))) == len(m["images"])
    assert (tmp_path / "plots" / "before_after.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.fault("Faults", "train_fast_style SIGKILLed after its first epoch checkpoint: no model or metrics under "
                   "final names; the rerun resumes from --run-dir (crop RNG included) and ends with the same metrics")
def test_train_fast_style_killed_then_resumes(work, tmp_path):
    params = tiny_params(tmp_path / "p", style__train_fast_style__epochs=2)
    ref, root = kill_train_then_resume(lambda r: _fast_cmd(work, r, params), tmp_path, seed=5)
    assert metrics_without(root, TIMING) == metrics_without(ref, TIMING)


@pytest.mark.fault("Bad data", "gatys with a painting smaller than the crop, or a content name that is not a file: "
                   "one line naming the file (its size and the params key) or the names there are; no output")
def test_gatys_bad_image_size_and_name(work, tmp_path):
    params = tiny_params(tmp_path / "p", style__gatys__size=4096)
    line = stage_fails(_gatys_cmd(work, tmp_path / "a", params=params))
    assert "smaller than the 4096-px crop of style.gatys.size" in line and ".jpg" in line, line
    line = stage_fails(_gatys_cmd(work, tmp_path / "b", content="nope"))
    assert "no such image" in line and "tubingen" in line, line
    assert not (tmp_path / "a" / "images").exists() and not (tmp_path / "b" / "metrics.json").exists()


@pytest.mark.fault("Params", "a loss network whose per-layer weights do not match its layers, a network name that "
                   "does not exist, dream layers the network lacks, or a per-network budget missing a network: one "
                   "line naming the params key")
@pytest.mark.parametrize("key, value, stage, match", [
    ("style__networks__backbone__content", [1.0], "gatys", "style.networks.backbone.content: [1.0]: expected one weight"),
    ("style__gatys__networks", ["imagenet"], "gatys", "style.gatys.networks: 'imagenet': expected backbone, random_vgg"),
    ("style__deep_dream__layers", ["group7"], "deep_dream", "style.deep_dream.layers: ['group7'] are not layers"),
    ("style__gatys__n_evals", {"backbone": 5}, "gatys", "style.gatys.n_evals: {'backbone': 5}: expected a value for each"),
])
def test_style_bad_params(work, tmp_path, key, value, stage, match):
    params = tiny_params(tmp_path / "p", **{key: value})
    if stage == "gatys":
        cmd = _gatys_cmd(work, tmp_path / "o", params=params)
    else:
        cmd = stage_cmd("deep_dream", "--params", params, work["images"], work["backbone"], tmp_path / "o",
                        tmp_path / "plots", "--metrics", tmp_path / "m.json")
    assert match in stage_fails(cmd)


@pytest.mark.ddp
def test_train_fast_style_under_torchrun(work, tmp_path):
    """runtime.nproc_per_node 2 (bs 4: 2 crops per rank); rank 0 alone stylises, grades and writes."""
    params = tiny_params(tmp_path / "p", runtime__nproc_per_node=2, style__train_fast_style__bs=4)
    run_stage("train_fast_style", *_fast_cmd(work, tmp_path / "o", params)[2:])
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert set(m["photos"]) == {"amber", "golden_gate", "hoovertowernight", "tubingen"}
    assert (tmp_path / "o" / "model.pt").is_file() and len(list((tmp_path / "o" / "styled").glob("*.png"))) == 4
