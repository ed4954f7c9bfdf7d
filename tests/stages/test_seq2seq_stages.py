"""The translation stages through their CLIs on real Multi30k pairs at tiny scale: a training run
SIGKILLed after its first epoch checkpoint resumes to the same metrics, and bad params end in one line."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stage_runs import kill_train_then_resume, run_stage, stage_cmd, stage_env, tiny_params

pytestmark = pytest.mark.slow
TIMING = ("train_seconds", "target_tokens_per_s")


@pytest.fixture(scope="module")
def pair_ids(mirror, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("s2s")
    params = tiny_params(root / "p", seq2seq__train__epochs=3)
    run_stage("prepare_pairs", "--params", params, mirror / "multi30k_en_fr", root / "pairs")
    for lang in ("fr", "en"):
        run_stage("numericalize_pairs", "--params", params, root / "pairs" / lang, root / "ids" / lang)
    return {"params": params, "fr": root / "ids" / "fr", "en": root / "ids" / "en"}


def _train_cmd(d: dict, root: Path, params: Path | None = None) -> list[str]:
    return stage_cmd("train_seq2seq", "--params", params or d["params"], d["fr"], d["en"], root / "model.pt",
                     "--log-dir", root / "log", "--run-dir", root / "run", "--metrics", root / "metrics.json")


def _metrics(root: Path) -> dict:
    m = json.loads((root / "metrics.json").read_text())
    return {k: v for k, v in m.items() if k not in TIMING}


@pytest.mark.fault("Faults", "train_seq2seq SIGKILLed after its first epoch checkpoint: no model or metrics under "
                   "final names; the rerun resumes from --run-dir and ends with the same metrics (teacher forcing's "
                   "draws included)")
def test_train_seq2seq_killed_then_resumes(pair_ids, tmp_path):
    ref, root = kill_train_then_resume(lambda r: _train_cmd(pair_ids, r), tmp_path, seed=5)
    assert _metrics(root) == _metrics(ref) and len(_metrics(ref)["epoch_valid_loss"]) == 3


def test_evaluate_writes_scores_samples_and_attention(pair_ids, tmp_path):
    p = subprocess.run(_train_cmd(pair_ids, tmp_path), capture_output=True, text=True, timeout=600, env=stage_env())
    assert p.returncode == 0, p.stderr[-3000:]
    text = Path(pair_ids["fr"]).parent.parent / "pairs" / "text"
    run_stage("evaluate_seq2seq", "--params", pair_ids["params"], tmp_path / "model.pt", pair_ids["fr"], text,
              tmp_path / "eval", "--metrics", tmp_path / "e.json")
    m = json.loads((tmp_path / "e.json").read_text())
    assert m["n_test"] == 20 and {"greedy", "beam", "baseline_retrieval"} <= set(m)
    assert m["beam"]["mean_score_gain"] >= 0.0
    assert (tmp_path / "eval" / "attention.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.fault("Params", "train_seq2seq with seq2seq.train.teacher_forcing [1.5]: exits 1 before any work, the "
                   "last line names the key and the bound")
def test_bad_teacher_forcing_param(pair_ids, tmp_path):
    params = tiny_params(tmp_path / "p", seq2seq__train__teacher_forcing=[1.5])
    p = subprocess.run(_train_cmd(pair_ids, tmp_path, params), capture_output=True, text=True, timeout=300, env=stage_env())
    assert p.returncode == 1 and not (tmp_path / "run").exists()
    assert p.stderr.strip().splitlines()[-1] == (
        f"train_seq2seq: ParamsError: {params}: seq2seq.train.teacher_forcing[0]: expected a value <= 1.0, got 1.5 (float)")


@pytest.mark.ddp
def test_train_seq2seq_under_torchrun(pair_ids, tmp_path):
    """runtime.nproc_per_node 2: the stage re-runs itself under torchrun (2 CPU ranks, gloo), rank 0 writes."""
    params = tiny_params(tmp_path / "p", runtime__nproc_per_node=2, seq2seq__train__epochs=1)
    p = subprocess.run(_train_cmd(pair_ids, tmp_path, params), capture_output=True, text=True, timeout=600, env=stage_env())
    assert p.returncode == 0, p.stderr[-3000:]
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["n_train"] == 200 and len(m["epoch_valid_loss"]) == 1 and (tmp_path / "model.pt").is_file()
