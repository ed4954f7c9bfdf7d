"""The segmentation stages through their CLIs on real CamVid frames (3 pairs per split, tiny scale):
a training run SIGKILLed after its first epoch checkpoint resumes to the same metrics, evaluation scores
every variant and draws its pictures, and bad inputs end in one line naming the file or params key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from stage_runs import (kill_train_then_resume, make_cifar_backbone, metrics_without, run_stage, stage_cmd,
                        stage_fails, tiny_params)

pytestmark = pytest.mark.slow
TIMING = ("train_seconds", "seconds_per_epoch")


@pytest.fixture(scope="module")
def work(mirror, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("unet")
    params = tiny_params(root / "p", unet__train__small_epochs=2)
    run_stage("index_masks", "--params", params, mirror / "camvid_segnet_subset", root / "index",
              "--metrics", root / "index.json")
    return {"root": root, "params": params, "index": root / "index", "backbone": make_cifar_backbone(root / "bb.pt", params)}


def _train_cmd(w: dict, out: Path, variant: str = "unet", params: Path | None = None, backbone: Path | None = None):
    return stage_cmd("train_unet", "--params", params or w["params"], w["index"], backbone or w["backbone"],
                     out / "model.pt", "--variant", variant, "--log-dir", out / "log", "--run-dir", out / "run",
                     "--metrics", out / "metrics.json")


@pytest.mark.fault("Faults", "train_unet SIGKILLed after its first epoch checkpoint: no model or metrics under final "
                   "names; the rerun resumes from --run-dir (phase, crop RNG and progressive-resize size included) "
                   "and ends with the same metrics")
def test_train_unet_killed_then_resumes(work, tmp_path):
    ref, root = kill_train_then_resume(lambda r: _train_cmd(work, r), tmp_path, seed=7)
    m = metrics_without(ref, TIMING)
    assert metrics_without(root, TIMING) == m and m["epochs"] == {"frozen": 1, "small": 2, "full": 1}
    assert m["encoder"]["source"] == "darknet:cifar" and m["encoder"]["strides"] == [1, 2, 4]


def test_evaluate_scores_every_variant_and_draws(work, tmp_path):
    models = []
    for variant in ("unet", "noskip", "scratch"):
        run_stage("train_unet", *_train_cmd(work, tmp_path / variant, variant)[2:])
        models += ["--model", f"{variant}={tmp_path / variant / 'model.pt'}"]
    noskip = json.loads((tmp_path / "noskip" / "metrics.json").read_text())
    scratch = json.loads((tmp_path / "scratch" / "metrics.json").read_text())
    assert noskip["n_params"] < json.loads((tmp_path / "unet" / "metrics.json").read_text())["n_params"]
    assert scratch["encoder"]["pretrained"] is False and "frozen" not in scratch["epochs"]
    out = tmp_path / "eval"
    run_stage("evaluate_unet", "--params", work["params"], work["index"], out, *models, "--metrics", out / "m.json")
    m = json.loads((out / "m.json").read_text())
    assert m["n_valid"] == m["n_test"] == 3
    for split in ("valid", "test"):
        assert set(m[split]) == {"unet", "noskip", "scratch"}
        for r in m[split].values():
            assert 0.0 <= r["pixel_accuracy"] <= 1.0 and set(r["iou"]) == set(json.loads(
                (work["root"] / "index.json").read_text())["train"]["class_share"])
    assert m["miou"] == m["valid"]["unet"]["miou"] and m["pixel_accuracy"] == m["valid"]["unet"]["pixel_accuracy"]
    results = (out / "results.md").read_text()
    assert "| valid | noskip |" in results and "Validation IoU per class" in results
    for png in ("confusion.png", "overlays.png", "iou.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.fault("Params", "train_unet with a backbone file that does not exist, or encoder taps the backbone "
                   "lacks: one line naming the file or `unet.encoder.taps` and the layers it has")
def test_train_unet_bad_backbone_and_taps(work, tmp_path):
    line = stage_fails(_train_cmd(work, tmp_path / "a", backbone=tmp_path / "nope.pt"))
    assert "nope.pt" in line
    params = tiny_params(tmp_path / "p", unet__encoder__taps=["stem", "group7"])
    line = stage_fails(_train_cmd(work, tmp_path / "b", params=params))
    assert "unet.encoder.taps" in line and "group7" in line and "group1" in line
    assert not (tmp_path / "a" / "model.pt").exists() and not (tmp_path / "b" / "model.pt").exists()


@pytest.mark.fault("Params", "evaluate_unet with a --model that is not NAME=PATH, without the headline `unet` "
                   "variant, or trained on other classes than the index: one line naming the spec or the model file; "
                   "no metrics written")
def test_evaluate_unet_bad_models(work, tmp_path):
    run_stage("train_unet", *_train_cmd(work, tmp_path / "m")[2:])
    model = tmp_path / "m" / "model.pt"
    base = stage_cmd("evaluate_unet", "--params", work["params"], work["index"], tmp_path / "out",
                     "--metrics", tmp_path / "out" / "m.json")
    assert "expected NAME=PATH" in stage_fails([*base, "--model", str(model)])
    assert "no --model unet=PATH" in stage_fails([*base, "--model", f"noskip={model}"])
    import torch

    blob = torch.load(model, weights_only=False)
    blob["extra"]["classes"] = blob["extra"]["classes"][::-1]
    torch.save(blob, tmp_path / "other.pt")
    line = stage_fails([*base, "--model", f"unet={tmp_path / 'other.pt'}"])
    assert "other.pt" in line and "trained on classes" in line
    assert not (tmp_path / "out" / "m.json").exists()


@pytest.mark.fault("Params", "train_unet with `unet.train.loss` outside ce/dice/ce+dice, a one-number "
                   "`unet.data.crop` or a zoom range with lo > hi: one line naming the key and what is expected, "
                   "before any training")
@pytest.mark.parametrize("key, value, match", [
    ("unet__train__loss", "focal", "unet.train.loss"),
    ("unet__data__crop", [96], "unet.data.crop: [96]: expected two numbers"),
    ("unet__data__scale", [1.25, 0.75], "unet.data.scale: [1.25, 0.75]: expected lo <= hi"),
])
def test_train_unet_bad_params(work, tmp_path, key, value, match):
    params = tiny_params(tmp_path / "p", **{key: value})
    line = stage_fails(_train_cmd(work, tmp_path / "o", params=params))
    assert match in line, line
    assert not (tmp_path / "o" / "run").exists() or not any((tmp_path / "o" / "run").iterdir())


@pytest.mark.ddp
def test_train_unet_under_torchrun(work, tmp_path):
    """runtime.nproc_per_node 2: two gloo processes share each global batch; rank 0 alone writes."""
    params = tiny_params(tmp_path / "p", runtime__nproc_per_node=2, unet__data__bs=2, unet__train__small_epochs=1)
    run_stage("train_unet", *_train_cmd(work, tmp_path / "o", params=params)[2:])
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["epochs"] == {"frozen": 1, "small": 1, "full": 1} and 0.0 <= m["valid_pixel_accuracy"] <= 1.0
    from dlpipe.models.unet import load_unet

    net, blob = load_unet(tmp_path / "o" / "model.pt")
    assert blob["extra"]["variant"] == "unet" and blob["extra"]["classes"][0] == "Sky"


@pytest.mark.fault("Determinism", "train_unet run twice with the same seed: identical metrics and identical weights "
                   "(random crops, zooms and flips included)")
def test_train_unet_is_deterministic(work, tmp_path):
    import torch

    for run in ("a", "b"):
        run_stage("train_unet", *_train_cmd(work, tmp_path / run)[2:])
    assert metrics_without(tmp_path / "a", TIMING) == metrics_without(tmp_path / "b", TIMING)
    a, b = (torch.load(tmp_path / r / "model.pt", weights_only=False)["model"] for r in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
