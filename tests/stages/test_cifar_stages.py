"""The CIFAR-10 task's four stages through their CLIs on the real archive at tiny scale (200 + 200 images)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlpipe.vision.features import load_backbone
from stage_runs import run_stage, tiny_params

pytestmark = pytest.mark.slow


def test_cifar_decode_lr_find_train_export(mirror, tmp_path):
    params = tiny_params(tmp_path / "p")
    archive = mirror / "cifar10_jpg" / "cifar10-jpg-YoongiKim-d7d05618.tar.gz"
    arrays, model, bb = tmp_path / "arrays", tmp_path / "model.pt", tmp_path / "backbone.pt"
    run_stage("decode_cifar", "--params", params, archive, arrays, "--metrics", tmp_path / "d.json")
    d = json.loads((tmp_path / "d.json").read_text())
    assert (d["n_train"], d["n_test"], d["train_per_class_min"]) == (200, 200, 20)
    assert np.load(arrays / "test_images.npy").shape == (200, 32, 32, 3)
    run_stage("lr_find_cifar", "--params", params, arrays, "--log-dir", tmp_path / "lrf", "--metrics", tmp_path / "l.json")
    lf = json.loads((tmp_path / "l.json").read_text())
    assert (tmp_path / "lrf" / "lr_find.png").stat().st_size > 0 and 1e-4 <= lf["suggestion"] <= 10
    run_stage("train_cifar", "--params", params, arrays, model, "--log-dir", tmp_path / "log",
              "--run-dir", tmp_path / "run", "--metrics", tmp_path / "t.json")
    t = json.loads((tmp_path / "t.json").read_text())
    assert 0.0 <= t["accuracy"] <= 1.0 and set(t["per_class_accuracy"]) == set((arrays / "classes.txt").read_text().split())
    assert set(t["time_to_accuracy"]) == {"0.80", "0.85", "0.90"} and len(t["epoch_accuracy"]) == 1
    for png in ("curves.png", "confusion.png", "misclassified.png"):
        assert (tmp_path / "log" / png).stat().st_size > 0
    assert not (tmp_path / "run" / "checkpoint.pt").exists()          # a finished run leaves no checkpoint
    run_stage("export_backbone", model, tmp_path / "t.json", bb, "--metrics", tmp_path / "e.json")
    body, info = load_backbone(None, bb, "pool")
    assert body(torch.zeros(1, 3, 32, 32)).shape == (1, json.loads((tmp_path / "e.json").read_text())["n_features"])
    assert info["backbone"] == "darknet:cifar" and len(info["mean"]) == 3
