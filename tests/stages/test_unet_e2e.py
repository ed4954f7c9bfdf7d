"""The segmentation task end to end at tiny scale: `dvc repro evaluate_unet` in a temporary repo copy
(3 real CamVid pairs per split over the tiny CIFAR Darknet, itself trained by the DAG), then what a
params change reruns."""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest

from dvc_helpers import dry_run_with, dvc_stdout, e2e_env, read_json, repro

VARIANTS = {"train_unet@unet", "train_unet@noskip", "train_unet@scratch"}
STAGES = {"download@camvid_segnet_subset", "index_masks", *VARIANTS, "evaluate_unet", "export_backbone"}


@pytest.mark.slow
def test_unet_repro(tiny_repo: Path, mirror: Path):
    t0 = time.time()
    r = repro(tiny_repo, "evaluate_unet", extra_env=e2e_env(mirror))
    print(f"tiny unet repro: {time.time() - t0:.0f} s for {len(r.ran)} stages")
    assert STAGES <= set(r.ran)
    idx = read_json(tiny_repo, "reports/unet/index_masks/metrics.json")
    assert idx["classes"] == 11 and all(idx[s]["pairs"] == 3 for s in ("train", "valid", "test"))
    assert (idx["train"]["height"], idx["train"]["width"]) == (360, 480)
    for v in ("unet", "noskip", "scratch"):
        t = read_json(tiny_repo, f"reports/unet/train_unet/{v}/metrics.json")
        assert t["variant"] == v and t["n_train"] == 3 and 0.0 <= t["valid_pixel_accuracy"] <= 1.0
        assert t["encoder"]["pretrained"] == (v != "scratch") and t["encoder"]["source"].startswith("darknet:cifar")
    m = read_json(tiny_repo, "reports/unet/evaluate_unet/metrics.json")
    assert m["n_valid"] == m["n_test"] == 3 and set(m["valid"]) == {"unet", "noskip", "scratch"}
    assert m["miou"] == m["valid"]["unet"]["miou"] and 0.0 <= m["pixel_accuracy"] <= 1.0
    for png in ("evaluate_unet/confusion.png", "evaluate_unet/overlays.png", "evaluate_unet/iou.png",
                "train_unet/unet/curves.png"):
        assert (tiny_repo / "reports/unet" / png).read_bytes()[:4] == b"\x89PNG"
    assert not sorted((tiny_repo / "data" / "runs").rglob("checkpoint.pt"))   # a finished run keeps no checkpoint
    assert "up to date" in dvc_stdout(tiny_repo, mirror, "status", "evaluate_unet")

    # one stage's params rerun that stage and its followers only (DVC's own plan)
    plan = partial(dry_run_with, tiny_repo, mirror, "evaluate_unet")   # (key, value) -> the stages DVC would rerun
    assert plan("unet.evaluate.n_overlays", 2) == {"evaluate_unet"}
    assert plan("unet.variants.noskip", {"skip": False, "pretrained": False}) == \
        {"train_unet@noskip", "evaluate_unet"}
    assert plan("unet.train.lr", 1e-3) == VARIANTS | {"evaluate_unet"}
