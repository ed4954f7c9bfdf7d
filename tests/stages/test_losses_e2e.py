"""The two image-loss tasks end to end at tiny scale, one build for both: `dvc repro evaluate_superres
style_summary deep_dream` in a temporary repo copy (10 real photos, the real Set5, the style photos and
paintings; the loss network = the tiny CIFAR Darknet the DAG trains), then what a params change reruns."""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest

from dvc_helpers import dry_run_with, dvc_stdout, e2e_env, read_json, repro

TRAIN = {"train_superres@x2", "train_superres@x4"}
FINETUNE = {"finetune_superres@x2", "finetune_superres@x4"}
SUPERRES = {"download@raccoon_voc", "download@sr_benchmarks", "index_photos", *TRAIN, *FINETUNE, "evaluate_superres"}
PAIRS = ("tubingen-starry_night", "tubingen-the_scream", "golden_gate-starry_night", "golden_gate-the_scream")
STYLE = {"download@style_transfer", *(f"gatys@{p}" for p in PAIRS), "deep_dream", "train_fast_style", "style_summary"}


@pytest.mark.slow
def test_superres_and_style_repro(tiny_repo: Path, mirror: Path):
    t0 = time.time()
    r = repro(tiny_repo, "evaluate_superres", "style_summary", "deep_dream", extra_env=e2e_env(mirror))
    print(f"tiny superres + style repro: {time.time() - t0:.0f} s for {len(r.ran)} stages")
    assert SUPERRES | STYLE | {"export_backbone"} <= set(r.ran)

    idx = read_json(tiny_repo, "reports/superres/index_photos/metrics.json")
    assert idx["n_photos"] + idx["too_small"] == 10 and idx["n_valid"] == 2
    for v in ("x2", "x4"):
        t = read_json(tiny_repo, f"reports/superres/train_superres/{v}/metrics.json")
        f = read_json(tiny_repo, f"reports/superres/finetune_superres/{v}/metrics.json")
        assert t["variant"] == f["variant"] == v and f["init_valid_psnr_y"] == t["valid_psnr_y"]
        assert f["loss_network"]["source"] == "darknet:cifar"
    m = read_json(tiny_repo, "reports/superres/evaluate_superres/metrics.json")
    assert m["x2_Set5_bicubic_psnr"] == pytest.approx(33.67, abs=0.02) and {"x2_Set5_l1_psnr", "x4_Set5_perceptual_psnr"} <= set(m)

    g = read_json(tiny_repo, f"reports/style/gatys/{PAIRS[0]}/metrics.json")
    assert set(g["networks"]) == {"backbone", "random_vgg"} and g["judge"].startswith("random_vgg:")
    assert all(0.0 < n["style_fall"] <= 1.0 for n in g["networks"].values())   # the judge sees the style move
    assert sorted(p.name for p in (tiny_repo / f"data/processed/style/gatys/{PAIRS[0]}").iterdir()) == \
        ["backbone.png", "random_vgg.png"]
    s = read_json(tiny_repo, "reports/style/style_summary/metrics.json")
    assert s["n_pairs"] == 4 and s["same_size"] and s["speedup"] > 1
    assert "fast transformer" in (tiny_repo / "reports/style/style_summary/results.md").read_text()
    assert read_json(tiny_repo, "reports/style/deep_dream/metrics.json")["activation_gain"] > 1.0

    for png in ("superres/evaluate_superres/crops_x2.png", "superres/evaluate_superres/crops_x4.png",
                "superres/train_superres/x2/curves.png", "superres/finetune_superres/x4/curves.png",
                f"style/gatys/{PAIRS[0]}/side_by_side.png", f"style/gatys/{PAIRS[0]}/loss_curves.png",
                "style/deep_dream/before_after.png", "style/train_fast_style/stylised.png"):
        assert (tiny_repo / "reports" / png).read_bytes()[:4] == b"\x89PNG", png
    assert not sorted((tiny_repo / "data" / "runs").rglob("checkpoint.pt"))   # a finished run keeps no checkpoint
    assert "up to date" in dvc_stdout(tiny_repo, mirror, "status", "evaluate_superres", "style_summary", "deep_dream")

    # one stage's params rerun that stage and its followers only (DVC's own plan; the changes accumulate)
    plan = partial(dry_run_with, tiny_repo, mirror, "evaluate_superres")
    assert plan("superres.evaluate.crop", 32) == {"evaluate_superres"}
    x4 = {"train_superres@x4", "finetune_superres@x4", "evaluate_superres"}
    assert plan("superres.variants.x4", {"scale": 4, "patch": 64}) == x4
    assert plan("superres.loss_network.layer_weights", [1.0, 1.0, 1.0]) == x4 | FINETUNE    # not train_superres@x2
    assert plan("superres.model.nf", 16) == TRAIN | FINETUNE | {"evaluate_superres"}
    # style_summary reads only its producers' metrics (cache: false), so DVC's dry run, which plans from the
    # current hashes, lists it only once they have run; a real repro reruns it (the metrics change)
    style = partial(dry_run_with, tiny_repo, mirror, "style_summary")
    assert style("style.train_fast_style.epochs", 2) == {"train_fast_style"}
    assert style("style.gatys.n_evals", {"backbone": 3, "random_vgg": 2}) == {f"gatys@{p}" for p in PAIRS} | {"train_fast_style"}
    assert style("style.pairs.style", ["starry_night"]) == {"gatys@tubingen-starry_night", "gatys@golden_gate-starry_night",
                                                           "train_fast_style", "style_summary"}
