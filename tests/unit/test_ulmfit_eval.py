"""ULMFiT's evaluation pieces on fixtures: the fwd+bwd ensemble per evaluation set, the NB-SVM and
TF-IDF baselines, the label-efficiency summary and its picture."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from dlpipe.core.errors import DataError
from dlpipe.tasks.ulmfit.curve import label_curve
from dlpipe.tasks.ulmfit.ensemble import ensemble
from dlpipe.tasks.ulmfit.evaluate import classification_metrics, nbsvm_baseline, tfidf_baseline
from dlpipe.tasks.ulmfit.params import EvalParams, PrepareParams

P = EvalParams(sets=["test"], bs=8, tfidf_ngrams=2, tfidf_min_df=1, tfidf_C=10.0)


def write_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_ensemble_averages_probabilities_per_set(tmp_path):
    for d, probs in (("fwd", [[0.9, 0.1], [0.4, 0.6], [0.45, 0.55]]), ("bwd", [[0.6, 0.4], [0.8, 0.2], [0.6, 0.4]])):
        (tmp_path / d).mkdir()
        for s in ("test", "sample"):
            np.save(tmp_path / d / f"probs_{s}.npy", np.array(probs, np.float32))
            np.save(tmp_path / d / f"labels_{s}.npy", np.array([0, 1, 0]))
    m = ensemble(fwd=tmp_path / "fwd", bwd=tmp_path / "bwd")
    # fwd: right, right, wrong; bwd: right, wrong, right; mean: [.75 .25] [.6 .4] [.525 .475] -> right, wrong, right
    assert m["test"] == {"fwd_accuracy": pytest.approx(2 / 3), "bwd_accuracy": pytest.approx(2 / 3),
                         "ensemble_accuracy": pytest.approx(2 / 3), "n": 3}
    assert m["ensemble_accuracy"] == m["test"]["ensemble_accuracy"] and set(m) == {"ensemble_accuracy", "test", "sample"}


@pytest.mark.fault("Bad data", "ensemble of forward and backward predictions on different reviews: DataError naming both")
def test_ensemble_refuses_mismatched_sets(tmp_path):
    for d, n in (("fwd", 3), ("bwd", 2)):
        (tmp_path / d).mkdir()
        np.save(tmp_path / d / "probs_test.npy", np.full((n, 2), 0.5, np.float32))
        np.save(tmp_path / d / "labels_test.npy", np.zeros(n, np.int64))
    with pytest.raises(DataError, match="predictions on 'test' are not for the same reviews"):
        ensemble(fwd=tmp_path / "fwd", bwd=tmp_path / "bwd")


def test_classification_metrics_standard_error():
    m = classification_metrics(np.array([[0.9, 0.1]] * 3 + [[0.2, 0.8]]), np.array([0, 0, 1, 1]), ["neg", "pos"])
    assert m["accuracy"] == 0.75 and m["std_error"] == pytest.approx(np.sqrt(0.75 * 0.25 / 4)) and m["n"] == 4


def test_baselines_learn_a_separable_fixture(tmp_path):
    good, bad = ["a wonderful great film", "great acting wonderful", "loved it great"], ["awful boring film",
                                                                                         "boring dull awful", "hated it dull"]
    train = write_csv(tmp_path / "train.csv", [(1, t) for t in good] + [(0, t) for t in bad])
    test = write_csv(tmp_path / "test.csv", [(1, "great wonderful"), (0, "dull boring awful"), (1, "loved great")])
    for m in (tfidf_baseline(train, {"test": test}, ["neg", "pos"], P, 0), nbsvm_baseline(train, {"test": test}, ["neg", "pos"], P)):
        assert m["test"] == 1.0 and m["n_train"] == 6


def test_label_curve_table_and_picture(tmp_path):
    for n, ulm, rnd, tf in ((100, 0.78, 0.55, 0.62), (500, 0.84, 0.61, 0.75)):
        for init, acc in (("ulmfit", ulm), ("random", rnd)):
            d = tmp_path / "curve" / f"{n}-{init}"
            d.mkdir(parents=True)
            (d / "metrics.json").write_text(json.dumps({"n_labels": n, "init": init, "accuracy": acc, "tfidf_accuracy": tf}))
    stale = tmp_path / "curve" / "2000-ulmfit"                # another scale's point: not in imdb.prepare.curve
    stale.mkdir()
    (stale / "metrics.json").write_text(json.dumps({"n_labels": 2000, "init": "ulmfit", "accuracy": 0.9, "tfidf_accuracy": 0.8}))
    m = label_curve(points=tmp_path / "curve", png=tmp_path / "c.png", table=tmp_path / "c.md", p=prep_params([100, 500]))
    assert m == {"100": {"ulmfit": 0.78, "random": 0.55, "tfidf": 0.62}, "500": {"ulmfit": 0.84, "random": 0.61, "tfidf": 0.75}}
    assert "| 100 | 0.7800 | 0.5500 | 0.6200 | +0.1600 |" in (tmp_path / "c.md").read_text()
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(DataError, match=r"1000-ulmfit/metrics\.json: curve point missing \(2 of 6"):
        label_curve(points=tmp_path / "curve", png=tmp_path / "c.png", table=tmp_path / "c.md", p=prep_params([100, 500, 1000]))


def prep_params(curve: list[int]) -> PrepareParams:
    return PrepareParams(split_seed=0, n_train=None, n_valid=2, n_test=None, curve=curve, lm_max_words=None,
                         lm_valid_pct=0.1, include_unsup=True, max_docs=None)
