"""End to end at tiny scale: `dvc repro` of the vision transfer demo (and DeViSE) in a temporary repo copy."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def dvc(repo: Path, mirror: Path, *args: str) -> str:
    # OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning. It changes no result; on a
    # loaded 2-core runner torch's spinning threads made a tiny head's epoch 15x slower (wall and CPU).
    env = {**os.environ, "DLPIPE_MIRROR": str(mirror), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    out = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"dvc {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def read(repo: Path, rel: str) -> dict:
    return json.loads((repo / rel).read_text())


@pytest.mark.slow
def test_transfer_demo_repro(tiny_repo: Path, mirror: Path):
    dvc(tiny_repo, mirror, "repro", "transfer_summary")
    summary = read(tiny_repo, "reports/vision/transfer/metrics.json")
    variants = {f"{m}_{l}" for m in ("head", "finetune", "scratch") for l in ("full", "low")}
    assert set(summary["accuracy"]) == variants
    assert all(0.0 <= a <= 1.0 for a in summary["accuracy"].values())
    assert summary["n_train"]["head_low"] < summary["n_train"]["head_full"]
    assert summary["n_train"]["head_low"] == summary["n_train"]["finetune_low"] == summary["n_train"]["scratch_low"]
    assert summary["epoch_seconds"]["head_full"] < summary["epoch_seconds"]["finetune_full"]
    n_valid = read(tiny_repo, "reports/vision/evaluate/head_full/metrics.json")["n_valid"]
    assert summary["precompute"]["rows"] == summary["n_train"]["head_full"] + n_valid   # every indexed image, once
    assert summary["precompute"]["images_per_s"] > 0 and summary["precompute"]["bytes_on_disk"] > 0
    for v in variants:   # every evaluation drew its pictures
        for png in ("confusion.png", "predictions.png"):
            assert (tiny_repo / "reports/vision/evaluate" / v / png).read_bytes()[:4] == b"\x89PNG"
    # the head-only model evaluated on images agrees with its validation on stored features
    assert read(tiny_repo, "reports/vision/evaluate/head_full/metrics.json")["accuracy"] == pytest.approx(
        read(tiny_repo, "reports/vision/train_head/full/metrics.json")["accuracy"], abs=1e-4)
    assert "metrics.json" in dvc(tiny_repo, mirror, "metrics", "show")
    assert "up to date" in dvc(tiny_repo, mirror, "status", "transfer_summary")   # nothing left stale

    # an evaluation-only param reruns the six evaluations, nothing upstream (DVC's own plan, from
    # --dry: running them again would only re-prove that they run; --dry cannot foresee that their
    # metrics change, so transfer_summary is not listed)
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    params["vision"]["evaluate"]["n_show"] += 1
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = dvc(tiny_repo, mirror, "repro", "--dry", "transfer_summary")
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran == {f"evaluate_vision@{m}-{l}" for m in ("head", "finetune", "scratch") for l in ("full", "low")}, out


def _has_lm_stage(repo: Path) -> bool:
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    return "data/models/imdb/pretrain_lm" in json.dumps({k: v.get("outs", v.get("do", {}).get("outs"))
                                                         for k, v in stages.items()})


@pytest.mark.slow
@pytest.mark.long
def test_devise_repro(tiny_repo: Path, mirror: Path):
    if not _has_lm_stage(tiny_repo):
        pytest.skip("no stage in dvc.yaml produces data/models/imdb/pretrain_lm (the ULMFiT LM) yet")
    dvc(tiny_repo, mirror, "repro", "devise_search")
    vocab = read(tiny_repo, "reports/vision/devise/vocab/metrics.json")
    assert vocab["n_matched"] + vocab["n_unmatched"] == vocab["n_classes"] == 3
    m = read(tiny_repo, "reports/vision/devise/search/metrics.json")
    assert 0.0 <= m["top1_vocab"] <= m["top5_vocab"] <= 1.0 and m["vocab_searched"] > 0
    report = (tiny_repo / "reports/vision/devise/search/report.md").read_text()
    assert "Nearest words per image" in report and "Nearest images per word" in report
    assert "| cat |" in (tiny_repo / "reports/vision/devise/vocab_match.md").read_text()
