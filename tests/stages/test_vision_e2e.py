"""End to end at tiny scale: `dvc repro` of the vision transfer demo (and DeViSE) in a temporary repo copy."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from dvc_helpers import dvc_stdout, e2e_env, read_json, repro


@pytest.mark.slow
def test_transfer_demo_repro(tiny_repo: Path, mirror: Path):
    t0 = time.time()
    r = repro(tiny_repo, "transfer_summary", extra_env=e2e_env(mirror))
    print(f"tiny vision repro: {time.time() - t0:.0f} s for {len(r.ran)} stages")
    summary = read_json(tiny_repo, "reports/vision/transfer/metrics.json")
    variants = {f"{m}_{l}" for m in ("head", "finetune", "scratch") for l in ("full", "low")}
    assert set(summary["accuracy"]) == variants
    assert all(0.0 <= a <= 1.0 for a in summary["accuracy"].values())
    assert summary["n_train"]["head_low"] < summary["n_train"]["head_full"]
    assert summary["n_train"]["head_low"] == summary["n_train"]["finetune_low"] == summary["n_train"]["scratch_low"]
    assert summary["epoch_seconds"]["head_full"] < summary["epoch_seconds"]["finetune_full"]
    n_valid = read_json(tiny_repo, "reports/vision/evaluate/head_full/metrics.json")["n_valid"]
    assert summary["precompute"]["rows"] == summary["n_train"]["head_full"] + n_valid   # every indexed image, once
    assert summary["precompute"]["images_per_s"] > 0 and summary["precompute"]["bytes_on_disk"] > 0
    for v in variants:   # every evaluation drew its pictures
        for png in ("confusion.png", "predictions.png"):
            assert (tiny_repo / "reports/vision/evaluate" / v / png).read_bytes()[:4] == b"\x89PNG"
    # the head-only model evaluated on images agrees with its validation on stored features
    assert read_json(tiny_repo, "reports/vision/evaluate/head_full/metrics.json")["accuracy"] == pytest.approx(
        read_json(tiny_repo, "reports/vision/train_head/full/metrics.json")["accuracy"], abs=1e-4)
    assert "metrics.json" in dvc_stdout(tiny_repo, mirror, "metrics", "show")
    assert "up to date" in dvc_stdout(tiny_repo, mirror, "status", "transfer_summary")   # nothing left stale
    # a finished run leaves no resume checkpoint: the next (code- or input-triggered) rerun must train
    assert not sorted((tiny_repo / "data" / "runs").rglob("checkpoint.pt"))

    # an evaluation-only param reruns the six evaluations, nothing upstream (DVC's own plan, from
    # --dry: running them again would only re-prove that they run; --dry cannot foresee that their
    # metrics change, so transfer_summary is not listed)
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    params["vision"]["evaluate"]["n_show"] += 1
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = dvc_stdout(tiny_repo, mirror, "repro", "--dry", "transfer_summary")
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran == {f"evaluate_vision@{m}-{l}" for m in ("head", "finetune", "scratch") for l in ("full", "low")}, out


@pytest.mark.slow
@pytest.mark.long
def test_devise_repro(tiny_repo: Path, mirror: Path):
    """DeViSE on the tiny ULMFiT LM's word vectors: every AFHQ class gets a vector (scales/tiny.yaml's
    vision.devise.class_words), a cosine-loss head is trained, search runs over the whole vocabulary."""
    t0 = time.time()
    r = repro(tiny_repo, "devise_search", extra_env=e2e_env(mirror))
    print(f"tiny devise repro: {time.time() - t0:.0f} s for {len(r.ran)} stages")
    assert {"pretrain_lm@fwd", "devise_vocab", "devise_train", "devise_search"} <= set(r.ran)
    vocab = read_json(tiny_repo, "reports/vision/devise/vocab/metrics.json")
    assert vocab == {**vocab, "n_classes": 3, "n_matched": 3, "n_unmatched": 0}
    itos = read_json(tiny_repo, "data/models/imdb/pretrain_lm/itos.json")
    assert vocab["vocab_size"] == len(itos)
    train = read_json(tiny_repo, "reports/vision/devise/train/metrics.json")
    assert train["n_train"] > 0 and train["valid_cosine_loss"] == pytest.approx(1 - train["valid_cosine_sim"], abs=1e-4)
    m = read_json(tiny_repo, "reports/vision/devise/search/metrics.json")
    assert 0.0 <= m["top1_vocab"] <= m["top5_vocab"] <= 1.0 and 0.0 <= m["top1_class"] <= 1.0
    assert m["n_classes"] == 3 and 0 < m["vocab_searched"] <= len(itos)
    report = (tiny_repo / "reports/vision/devise/search/report.md").read_text()
    assert "Nearest words per image" in report and "Nearest images per word" in report
    assert "| cat |" in (tiny_repo / "reports/vision/devise/vocab_match.md").read_text()
