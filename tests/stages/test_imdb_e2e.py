"""End to end at tiny scale: `dvc repro` of the whole imdb task (both directions) in a repo copy."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from dvc_helpers import dvc_stdout, e2e_env, parse_repro, read_json, repro

STAGES = ("generate", "ensemble", "label_curve", "evaluate_lm@fwd", "evaluate_lm@bwd")   # every imdb stage
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
        assert ev["accuracy"] == ev["test"]["accuracy"] and ev["sample"]["n"] == 200   # test subset first, then imdb_sample's
        assert ev["test"]["error_rate"] == pytest.approx(1 - ev["test"]["accuracy"])
        for base in ("tfidf_baseline", "nbsvm_baseline"):
            assert 0 <= ev[base]["test"] <= 1 and 0 <= ev[base]["sample"] <= 1
        for s in ("test", "sample"):
            assert (tiny_repo / f"reports/imdb/evaluate/{key}/confusion_{s}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tiny_repo / f"reports/imdb/train_classifier/{key}/history.tsv").is_file()
        ppl = read_json(tiny_repo, f"reports/imdb/evaluate_lm/{key}.json")
        for lm in ("pretrained", "finetuned"):    # both LMs on held-out WikiText, books and reviews
            assert {"wikitext", "books", "imdb"} <= set(ppl[lm]) and all(v["perplexity"] > 1 for v in ppl[lm].values())
        assert ppl["finetuned"]["imdb"]["loss"] < ppl["pretrained"]["imdb"]["loss"]   # fine-tuning learnt the reviews
    ens = read_json(tiny_repo, "reports/imdb/ensemble/metrics.json")
    fwd = read_json(tiny_repo, "reports/imdb/evaluate/fwd/metrics.json")
    assert ens["test"]["fwd_accuracy"] == pytest.approx(fwd["test"]["accuracy"]) and ens["test"]["n"] == fwd["test"]["n"]
    prep = read_json(tiny_repo, "reports/imdb/prepare_imdb/metrics.json")
    assert prep["dropped_equal_to_eval"]["clas_pool"] >= 1       # imdb_sample's reviews are in aclImdb train
    curve = read_json(tiny_repo, "reports/imdb/label_curve/metrics.json")
    assert set(curve) == {k.split("-")[1] for k in prep["rows"] if k.startswith("clas/curve-")}
    assert all({"ulmfit", "random", "tfidf"} <= set(v) for v in curve.values())
    assert (tiny_repo / "reports/imdb/label_curve/curve.png").read_bytes()[:4] == b"\x89PNG"
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
    curve = {f"curve@{n}-{i}" for n in (20,) for i in ("ulmfit", "random")}    # the curve reads the same params
    assert set(plan.ran) == {"train_classifier@bwd", "ensemble"} | curve, plan.output[-3000:]
    print(f"tiny imdb e2e incl. ablation: {time.time() - t0:.0f} s")
