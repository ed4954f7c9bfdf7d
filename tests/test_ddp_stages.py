"""Training stages under torchrun, launched from params (`runtime.nproc_per_node`), on real IMDb text.

The stage scripts run as `dvc repro` runs them (``python stages/<name>.py ...``); with
``nproc_per_node: 2`` the script re-runs itself under torchrun (2 CPU processes, gloo) and returns
when both ranks finished. Batch sizes in params are global, so without dropout an LM trained by 2
processes matches one trained by 1 process within float error.
"""
import json
import subprocess

import pytest
import torch

from stage_runs import imdb_csvs, run_stage, stage_cmd, stage_env, text_ids, tiny_params

pytestmark = [pytest.mark.slow, pytest.mark.ddp]


@pytest.fixture(scope="module")
def ids(mirror, tmp_path_factory):
    """tokenize -> numericalize of 120 real IMDb reviews: itos.json and labelled train/valid id corpora."""
    root = tmp_path_factory.mktemp("ddp_text")
    return text_ids(tiny_params(root), imdb_csvs(mirror, root, 100, 20), root)


def pretrain(ids, out, nproc, **over):
    params = tiny_params(out, runtime__nproc_per_node=nproc, **over)
    run_stage("pretrain_lm", "--params", params, "--direction", "fwd", ids, out / "lm",
              "--metrics", out / "metrics.json", "--log-dir", out / "log", "--run-dir", out / "run")
    return out


@pytest.fixture(scope="module")
def lms(ids, tmp_path_factory):
    """The same tiny LM pretrained without dropout by 1 process and by 2 (bs 32: 16 columns per rank)."""
    root = tmp_path_factory.mktemp("ddp_lm")
    over = dict(imdb__pretrain_lm__drop_mult=0.0)
    return {n: pretrain(ids, root / f"n{n}", n, **over) for n in (1, 2)}


def test_two_process_lm_matches_one_process(lms):
    a = torch.load(lms[1] / "lm" / "lm.pt")["model"]
    b = torch.load(lms[2] / "lm" / "lm.pt")["model"]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=2e-5, rtol=1e-4), (name, (a[name] - b[name]).abs().max())
    ma, mb = (json.loads((lms[n] / "metrics.json").read_text()) for n in (1, 2))
    assert ma["train_tokens"] == mb["train_tokens"] > 0
    assert mb["valid_loss"] == pytest.approx(ma["valid_loss"], rel=1e-4)
    assert mb["accuracy"] == pytest.approx(ma["accuracy"], abs=1e-4)


def test_rank_zero_alone_writes_and_history_matches(lms):
    # one history with the same rows as the 1-process run; the finished run left no checkpoint
    rows = {n: (lms[n] / "log" / "history.tsv").read_text().splitlines() for n in (1, 2)}
    assert len(rows[2]) == len(rows[1]) >= 2
    assert sorted(p.name for p in (lms[2] / "lm").iterdir()) == sorted(p.name for p in (lms[1] / "lm").iterdir())
    assert not list((lms[2] / "run").glob("*.pt"))
    assert not [p for p in lms[2].rglob("*") if ".tmp" in p.name]


def test_classifier_trains_under_torchrun(ids, lms, tmp_path):
    """Sortish batches sharded over 2 ranks, gradual unfreezing through DDP re-wrapping per phase."""
    params = tiny_params(tmp_path, runtime__nproc_per_node=2, imdb__train_classifier__finetune=False)
    run_stage("train_classifier", "--params", params, "--direction", "fwd", lms[1] / "lm", lms[1] / "lm",
              ids / "itos.json", ids, tmp_path / "clas", "--metrics", tmp_path / "metrics.json",
              "--log-dir", tmp_path / "log", "--run-dir", tmp_path / "run")
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.0 <= m["accuracy"] <= 1.0 and m["valid_loss"] == m["valid_loss"]   # not NaN
    assert m["vocab_matched_frac"] == 1.0                  # the LM's own vocabulary: every row carried over
    blob = torch.load(tmp_path / "clas" / "classifier.pt")
    assert blob["extra"] == {"direction": "fwd", "encoder": "pretrained"}
    phases = [r.split("\t")[0] for r in (tmp_path / "log" / "history.tsv").read_text().splitlines()[1:]]
    assert phases[0] == "last-1" and phases[-1] == "all"


def test_batch_that_does_not_split_names_the_key(ids, tmp_path):
    params = tiny_params(tmp_path, runtime__nproc_per_node=2, imdb__pretrain_lm__bs=5)
    p = subprocess.run(stage_cmd("pretrain_lm", "--params", params, "--direction", "fwd", ids, tmp_path / "lm",
                                 "--metrics", tmp_path / "m.json", "--log-dir", tmp_path / "log",
                                 "--run-dir", tmp_path / "run"),
                       capture_output=True, text=True, timeout=300, env=stage_env())
    assert p.returncode != 0
    assert "batch size 5 does not split evenly over 2 training processes" in p.stderr
    assert "runtime.nproc_per_node" in p.stderr and "torchrun" in p.stderr
    assert not (tmp_path / "lm").exists() and not (tmp_path / "m.json").exists()
