"""The super-resolution stages through their CLIs on real photos and the real Set5 (tiny scale): a training
run SIGKILLed after its first epoch checkpoint resumes to the same metrics, the perceptual fine-tune and
the evaluation run on its model, and bad inputs end in one line naming the file or params key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from stage_runs import (kill_train_then_resume, make_cifar_backbone, metrics_without, run_stage, stage_cmd,
                        stage_fails, tiny_params)

pytestmark = pytest.mark.slow
TIMING = ("train_seconds", "seconds_per_epoch")
PHOTOS = ("raccoon_voc/images", "afhq_cat_dog_wild", "style_transfer/content")


@pytest.fixture(scope="module")
def work(mirror, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("superres")
    params = tiny_params(root / "p")
    run_stage("index_photos", "--params", params, root / "photos", *[mirror / p for p in PHOTOS],
              "--metrics", root / "index.json")
    return {"root": root, "params": params, "photos": root / "photos", "bench": mirror / "sr_benchmarks",
            "backbone": make_cifar_backbone(root / "bb.pt", params)}


def _train_cmd(w: dict, out: Path, variant: str = "x2", params: Path | None = None):
    return stage_cmd("train_superres", "--params", params or w["params"], w["photos"], out / "model.pt",
                     "--variant", variant, "--log-dir", out / "log", "--run-dir", out / "run",
                     "--metrics", out / "metrics.json")


def _finetune_cmd(w: dict, init: Path, out: Path, variant: str = "x2", params: Path | None = None):
    return stage_cmd("finetune_superres", "--params", params or w["params"], w["photos"], init, w["backbone"],
                     out / "model.pt", "--variant", variant, "--log-dir", out / "log", "--run-dir", out / "run",
                     "--metrics", out / "metrics.json")


def test_index_counts_the_tiny_pool(work):
    m = json.loads((work["root"] / "index.json").read_text())
    assert m["n_photos"] + m["too_small"] == 10 and m["n_valid"] == 2 and m["n_train"] == m["n_photos"] - 2


@pytest.mark.fault("Faults", "train_superres SIGKILLed after its first epoch checkpoint: no model or metrics under "
                   "final names; the rerun resumes from --run-dir (phase, patch RNG and progressive-resize size "
                   "included) and ends with the same metrics")
def test_train_superres_killed_then_resumes(work, tmp_path):
    ref, root = kill_train_then_resume(lambda r: _train_cmd(work, r), tmp_path, seed=11)
    m = metrics_without(ref, TIMING)
    assert metrics_without(root, TIMING) == m and m["epochs"] == {"small": 1, "full": 1} and m["variant"] == "x2"
    assert m["valid_psnr_y"] > 20 and m["valid_bicubic_psnr_y"] > 20


def test_finetune_and_evaluate_every_scale(work, tmp_path):
    models = []
    for v in ("x2", "x4"):
        run_stage("train_superres", *_train_cmd(work, tmp_path / v, v)[2:])
        run_stage("finetune_superres", *_finetune_cmd(work, tmp_path / v / "model.pt", tmp_path / f"{v}p", v)[2:])
        models += ["--model", f"l1={tmp_path / v / 'model.pt'}", "--model", f"perceptual={tmp_path / f'{v}p' / 'model.pt'}"]
    ft = json.loads((tmp_path / "x4p" / "metrics.json").read_text())
    assert ft["loss_network"]["source"] == "darknet:cifar" and ft["init_valid_psnr_y"] == json.loads(
        (tmp_path / "x4" / "metrics.json").read_text())["valid_psnr_y"]
    out = tmp_path / "eval"
    run_stage("evaluate_superres", "--params", work["params"], work["bench"], out, *models, "--metrics", out / "m.json")
    m = json.loads((out / "m.json").read_text())
    assert m["n_images"] == {"Set5": 5}
    assert m["x2_Set5_bicubic_psnr"] == pytest.approx(33.67, abs=0.02)        # the published 33.66
    assert m["x4_Set5_bicubic_psnr"] == pytest.approx(28.43, abs=0.02)        # the published 28.42
    for k in ("x2", "x4"):
        assert set(m[k]["Set5"]) == {"bicubic", "l1", "perceptual"}
        assert all(0 < r["ssim"] <= 1 and r["edge"] > 0 for r in m[k]["Set5"].values())
    results = (out / "results.md").read_text()
    assert "| x4 | Set5 | perceptual |" in results and "x2 Set5, Y-PSNR (dB) per image" in results
    for png in ("crops_x2.png", "crops_x4.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.fault("Params", "train_superres with a patch the scale does not divide: one line naming "
                   "`superres.variants.<v>.patch` and the scale, before any training")
def test_train_superres_bad_patch(work, tmp_path):
    params = tiny_params(tmp_path / "p", superres__variants__x4__patch=30)
    line = stage_fails(_train_cmd(work, tmp_path / "o", "x4", params=params))
    assert "superres.variants.x4.patch: 30: expected a multiple of the scale 4" in line, line
    assert not (tmp_path / "o" / "model.pt").exists()


@pytest.mark.fault("Params", "finetune_superres from a model of another scale, or with a loss network the "
                   "backbone file lacks the layers of: one line naming the file or `superres.loss_network`")
def test_finetune_superres_bad_init_and_layers(work, tmp_path):
    run_stage("train_superres", *_train_cmd(work, tmp_path / "x2")[2:])
    line = stage_fails(_finetune_cmd(work, tmp_path / "x2" / "model.pt", tmp_path / "a", "x4"))
    assert "model.pt: a x2 model, but superres.variants.x4.scale is 4" in line, line
    params = tiny_params(tmp_path / "p", superres__loss_network__layers=["stem", "group9"])
    line = stage_fails(_finetune_cmd(work, tmp_path / "x2" / "model.pt", tmp_path / "b", params=params))
    assert "superres.loss_network.taps" in line and "group9" in line, line
    assert not (tmp_path / "a" / "model.pt").exists() and not (tmp_path / "b" / "model.pt").exists()


@pytest.mark.fault("Params", "evaluate_superres with a --model that is not NAME=PATH, two models of one name "
                   "at one scale, or a crop image not in the sets: one line naming it; no metrics written")
def test_evaluate_superres_bad_models(work, tmp_path):
    run_stage("train_superres", *_train_cmd(work, tmp_path / "x2")[2:])
    model = tmp_path / "x2" / "model.pt"
    base = stage_cmd("evaluate_superres", "--params", work["params"], work["bench"], tmp_path / "out",
                     "--metrics", tmp_path / "out" / "m.json")
    assert "expected NAME=PATH" in stage_fails([*base, "--model", str(model)])
    assert "a second x2 model named 'l1'" in stage_fails([*base, "--model", f"l1={model}", "--model", f"l1={model}"])
    params = tiny_params(tmp_path / "p", superres__evaluate__crop_images=["Set5/nope"])
    line = stage_fails(stage_cmd("evaluate_superres", "--params", params, work["bench"], tmp_path / "out",
                            "--model", f"l1={model}", "--metrics", tmp_path / "out" / "m.json"))
    assert "superres.evaluate.crop_images: 'Set5/nope'" in line, line
    assert not (tmp_path / "out" / "m.json").exists()


@pytest.mark.ddp
def test_train_superres_under_torchrun(work, tmp_path):
    """runtime.nproc_per_node 2: two CPU processes (gloo) share each global batch; rank 0 alone writes."""
    params = tiny_params(tmp_path / "p", runtime__nproc_per_node=2)
    run_stage("train_superres", *_train_cmd(work, tmp_path / "o", params=params)[2:])
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["epochs"] == {"small": 1, "full": 1} and m["valid_psnr_y"] > 20
    assert (tmp_path / "o" / "model.pt").is_file() and not list((tmp_path / "o" / "run").glob("checkpoint*"))
