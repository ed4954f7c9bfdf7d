"""Same params and seed, two runs in different directories (separate processes): identical outputs, on CPU.

Hashes every output file of tokenize, numericalize and precompute; compares the metrics, history and
weights of two runs of a training stage (train_head on the precomputed features).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from stage_runs import (build_vision_work, imdb_csvs, precompute_cmd, run_stage, stage_env, text_ids, tiny_params,
                        tree_digest)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def text_runs(mirror, tmp_path_factory) -> list[Path]:
    """Two independent tokenize -> numericalize runs over 80 real IMDb reviews."""
    root = tmp_path_factory.mktemp("text")
    params, csvs = tiny_params(root), imdb_csvs(mirror, root, 60, 20)
    runs = [root / "a", root / "b"]
    for run in runs:
        text_ids(params, csvs, run)
    return runs


@pytest.mark.fault("Determinism", "tokenize twice (separate processes, other dirs): every file byte-identical")
def test_tokenize_is_byte_identical(text_runs):
    a, b = (tree_digest(r / "tok") for r in text_runs)
    assert a == b and len(a) == 6


@pytest.mark.fault("Determinism", "numericalize twice: itos.json and every id corpus byte-identical")
def test_numericalize_is_byte_identical(text_runs):
    a, b = (tree_digest(r / "ids") for r in text_runs)
    assert a == b and "itos.json" in a and len(a) > 3


@pytest.fixture(scope="module")
def vision_runs(mirror, tmp_path_factory) -> list[Path]:
    """Two independent precompute -> train_head runs on 30 mnist_sample images per class and split."""
    root = tmp_path_factory.mktemp("vision")
    w = build_vision_work(root, mirror, per_class=30)
    runs = [root / "a", root / "b"]
    for run in runs:
        subprocess.run(precompute_cmd(w, run / "features", run / "precompute.json"), check=True, env=stage_env(),
                       capture_output=True, timeout=600)
        run_stage("train_head", "--params", w["params"], run / "features", w["backbone"], run / "head.pt",
                  run / "model.pt", "--labels", "full", "--labeled", w["index"] / "labeled.npy",
                  "--metrics", run / "metrics.json", "--log-dir", run / "logs", "--run-dir", run / "run")
    return runs


@pytest.mark.fault("Determinism", "precompute twice: every file of every feature store byte-identical")
def test_precompute_is_byte_identical(vision_runs):
    a, b = (tree_digest(r / "features") for r in vision_runs)
    assert a == b and any(k.startswith("valid/") for k in a)


@pytest.mark.fault("Determinism", "a training stage (train_head) twice on CPU: same metrics, history and weights")
def test_training_gives_identical_metrics(vision_runs):
    def result(run: Path):
        m = json.loads((run / "metrics.json").read_text())
        m.pop("epoch_seconds")
        hist = [line.rsplit("\t", 1)[0] for line in (run / "logs" / "history.tsv").read_text().splitlines()]
        return m, hist

    (ma, ha), (mb, hb) = (result(r) for r in vision_runs)
    assert ma == mb and ha == hb and len(ha) > 1
    wa, wb = (torch.load(r / "head.pt")["model"] for r in vision_runs)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
