"""End to end at tiny scale: `dvc repro` of the whole imdb task (both directions) in a repo copy."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

STAGES = ("generate", "ensemble")   # together they pull in every imdb stage


def dvc(repo: Path, mirror: Path, *args: str) -> str:
    env = {**os.environ, "DLPIPE_MIRROR": str(mirror)}
    out = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"dvc {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def read(repo: Path, rel: str) -> dict:
    return json.loads((repo / rel).read_text())


@pytest.mark.slow
@pytest.mark.long
def test_imdb_repro_both_directions(tiny_repo: Path, mirror: Path):
    t0 = time.time()
    dvc(tiny_repo, mirror, "repro", *STAGES)
    print(f"tiny imdb repro: {time.time() - t0:.0f} s")  # a speed figure, not a pass/fail line (see bench/)
    models = tiny_repo / "data/models/imdb"
    for d in ("pretrain_lm", "pretrain_lm_bwd", "finetune_lm", "finetune_lm_bwd"):
        itos = json.loads((models / d / "itos.json").read_text())
        emb = np.load(models / d / "embeddings.npy")        # the DeViSE contract: rows follow itos
        assert emb.dtype == np.float32 and emb.shape[0] == len(itos)
        assert {"lm.pt", "encoder.pt"} <= {p.name for p in (models / d).iterdir()}
    for key in ("fwd", "bwd"):
        lm = read(tiny_repo, f"reports/imdb/finetune_lm/{key}/metrics.json")
        assert lm["perplexity"] > 1 and 0 < lm["vocab_matched_frac"] <= 1
        ev = read(tiny_repo, f"reports/imdb/evaluate/{key}/metrics.json")
        assert 0 <= ev["accuracy"] <= 1 and ev["error_rate"] == pytest.approx(1 - ev["accuracy"])
        assert 0 <= ev["tfidf_baseline"]["accuracy"] <= 1
        assert (tiny_repo / f"reports/imdb/evaluate/{key}/confusion.png").read_bytes()[:4] == b"\x89PNG"
        assert (tiny_repo / f"reports/imdb/train_classifier/{key}/history.tsv").is_file()
    ens = read(tiny_repo, "reports/imdb/ensemble/metrics.json")
    assert ens["fwd_accuracy"] == pytest.approx(read(tiny_repo, "reports/imdb/evaluate/fwd/metrics.json")["accuracy"])
    samples = (tiny_repo / "reports/imdb/generate/samples.md").read_text()
    assert samples.count("## Prompt") == 3

    # an ablation flag reruns only the classifiers and what follows them
    out = dvc(tiny_repo, mirror, "exp", "run", "-S", "imdb.train_classifier.gradual_unfreezing=false", "ensemble")
    assert "Running stage 'train_classifier@fwd'" in out and "Running stage 'evaluate_classifier@bwd'" in out
    assert "Running stage 'finetune_lm" not in out and "Running stage 'pretrain_lm" not in out
