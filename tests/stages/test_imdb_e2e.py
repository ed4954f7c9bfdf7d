"""End to end at tiny scale: `dvc repro` of the whole imdb task (both directions) in a repo copy."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from dvc_helpers import dvc_stdout, e2e_env, parse_repro, read_json, repro

STAGES = ("generate", "ensemble")   # together they pull in every imdb stage
ABLATION = "imdb.train_classifier.gradual_unfreezing=false"


@pytest.mark.slow
@pytest.mark.long
def test_imdb_repro_both_directions(tiny_repo: Path, mirror: Path):
    t0 = time.time()
    r = repro(tiny_repo, *STAGES, extra_env=e2e_env(mirror))
    slowest = sorted(r.seconds.items(), key=lambda kv: -kv[1])[:5]
    # a speed figure, not a pass/fail line (see bench/)
    print(f"tiny imdb repro: {time.time() - t0:.0f} s for {len(r.ran)} stages; slowest: {slowest}")
    models = tiny_repo / "data/models/imdb"
    for d in ("pretrain_lm", "pretrain_lm_bwd", "finetune_lm", "finetune_lm_bwd"):
        itos = json.loads((models / d / "itos.json").read_text())
        emb = np.load(models / d / "embeddings.npy")        # the DeViSE contract: rows follow itos
        assert emb.dtype == np.float32 and emb.shape[0] == len(itos)
        assert {"lm.pt", "encoder.pt"} <= {p.name for p in (models / d).iterdir()}
    for key in ("fwd", "bwd"):
        lm = read_json(tiny_repo, f"reports/imdb/finetune_lm/{key}/metrics.json")
        assert lm["perplexity"] > 1 and 0 < lm["vocab_matched_frac"] <= 1
        ev = read_json(tiny_repo, f"reports/imdb/evaluate/{key}/metrics.json")
        assert 0 <= ev["accuracy"] <= 1 and ev["error_rate"] == pytest.approx(1 - ev["accuracy"])
        assert 0 <= ev["tfidf_baseline"]["accuracy"] <= 1
        assert (tiny_repo / f"reports/imdb/evaluate/{key}/confusion.png").read_bytes()[:4] == b"\x89PNG"
        assert (tiny_repo / f"reports/imdb/train_classifier/{key}/history.tsv").is_file()
    ens = read_json(tiny_repo, "reports/imdb/ensemble/metrics.json")
    assert ens["fwd_accuracy"] == pytest.approx(read_json(tiny_repo, "reports/imdb/evaluate/fwd/metrics.json")["accuracy"])
    samples = (tiny_repo / "reports/imdb/generate/samples.md").read_text()
    assert samples.count("## Prompt") == 3

    # An ablation flag reruns only the classifiers and what follows them. The forward chain really runs
    # it as a DVC experiment (the gradual_unfreezing=false code path, applied to the workspace); for the
    # rest, DVC's own plan (--dry) names the backward classifier (its params changed) and the ensemble (the
    # forward evaluation it reads changed), no language model and not `generate`. (--dry cannot foresee
    # that the backward classifier's outputs will change, so evaluate_classifier@bwd is not listed.)
    out = parse_repro(dvc_stdout(tiny_repo, mirror, "exp", "run", "-S", ABLATION, "evaluate_classifier@fwd"))
    assert set(out.ran) == {"train_classifier@fwd", "evaluate_classifier@fwd"}, out.output[-3000:]
    hist = (tiny_repo / "reports/imdb/train_classifier/fwd/history.tsv").read_text().splitlines()
    assert {line.split("\t")[0] for line in hist[1:]} == {"all"}     # one phase over every group
    plan = parse_repro(dvc_stdout(tiny_repo, mirror, "repro", "--dry", *STAGES))
    assert set(plan.ran) == {"train_classifier@bwd", "ensemble"}, plan.output[-3000:]
    print(f"tiny imdb e2e incl. ablation: {time.time() - t0:.0f} s")
