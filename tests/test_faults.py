"""SIGKILL the real tokenize, precompute and pretrain_lm stages at a random point, then rerun.

Each test runs the stage script in a subprocess on tiny real data, once uninterrupted (the reference)
and once killed (whole process group, SIGKILL) after a seeded random delay inside the window in
which the reference was writing its output. After the kill, the output path is either absent or
complete (byte-identical to the reference): only ``.tmp-*`` siblings may be left, and a rerun
ignores them. The rerun's output equals the reference (byte for byte for tokenize and precompute;
the training stage resumes from the last checkpoint in its ``--run-dir`` and ends with the same
metrics and history). The interrupted download is covered in tests/unit/test_download.py.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stage_runs import (build_vision_work, extract_imdb, imdb_csvs, kill_at_random_point, precompute_cmd, run_stage, stage_cmd,
                        stage_env, text_ids, timed_work, tiny_params, tmp_siblings, tree_digest)

pytestmark = pytest.mark.slow


def _assert_absent_or_complete(out: Path, reference: dict) -> None:
    if out.exists():
        assert tree_digest(out) == reference, f"{out} exists after the kill but differs from a complete run"
    assert not [p for p in out.parent.iterdir() if p.name != out.name and not p.name.startswith(".tmp-")]


def _writing(out: Path):
    """True once the stage has created its temp output (or the final output) next to ``out``."""
    return lambda: out.exists() or bool(tmp_siblings(out))


@pytest.mark.fault("Faults", "tokenize SIGKILLed at a random point: output absent or complete (only .tmp-* "
                   "siblings left); the rerun ignores them and is byte-identical to an uninterrupted run")
def test_tokenize_killed_then_rerun(mirror, tmp_path):
    src = extract_imdb(mirror, tmp_path) / "valid.csv"          # 200 reviews
    params = tiny_params(tmp_path)
    cmd = lambda out: stage_cmd("tokenize_text", "--params", params, src, out)
    ref = tmp_path / "ref" / "tok"
    window = timed_work(cmd(ref), _writing(ref), ref.exists)
    out = tmp_path / "killed" / "tok"
    kill_at_random_point(cmd(out), _writing(out), seed=1, window=window,
                         cleanup=lambda: shutil.rmtree(out.parent, ignore_errors=True))
    _assert_absent_or_complete(out, tree_digest(ref))
    run_stage("tokenize_text", "--params", params, src, out)
    assert tree_digest(out) == tree_digest(ref)


@pytest.fixture(scope="module")
def vision_work(mirror, tmp_path_factory) -> dict:
    return build_vision_work(tmp_path_factory.mktemp("vision"), mirror, per_class=150)


@pytest.mark.fault("Faults", "precompute SIGKILLed at a random point: no feature-store directory under its final "
                   "name unless complete; the rerun is byte-identical to an uninterrupted run")
def test_precompute_killed_then_rerun(vision_work, tmp_path):
    ref = tmp_path / "ref" / "features"
    window = timed_work(precompute_cmd(vision_work, ref, tmp_path / "ref.json"), _writing(ref),
                        (tmp_path / "ref.json").exists)
    out = tmp_path / "killed" / "features"
    kill_at_random_point(precompute_cmd(vision_work, out, tmp_path / "killed.json"), _writing(out), seed=2,
                         window=window, cleanup=lambda: (shutil.rmtree(out.parent, ignore_errors=True),
                                                         (tmp_path / "killed.json").unlink(missing_ok=True)),
                         done=(tmp_path / "killed.json").exists)
    _assert_absent_or_complete(out, tree_digest(ref))
    assert not (tmp_path / "killed.json").exists()
    subprocess.run(precompute_cmd(vision_work, out, tmp_path / "killed.json"), check=True, env=stage_env(),
                   capture_output=True, timeout=600)
    assert tree_digest(out) == tree_digest(ref)


@pytest.fixture(scope="module")
def lm_data(mirror, tmp_path_factory) -> dict:
    """Tiny params (bs 16: ~17 steps, a checkpoint every 3) and the IMDb LM set numericalized."""
    root = tmp_path_factory.mktemp("lm")
    params = tiny_params(root, imdb__pretrain_lm__bs=16, imdb__pretrain_lm__checkpoint_every=3)
    # 40 real reviews for training and 10 for validation, as the tiny prepare_imdb gives the LM
    csvs = imdb_csvs(mirror, root, n_train=40, n_valid=10)
    text_ids(params, csvs, root)
    return {"params": params, "data": root / "ids"}


def pretrain_cmd(d: dict, root: Path) -> list[str]:
    return stage_cmd("pretrain_lm", "--params", d["params"], "--direction", "fwd", d["data"], root / "lm",
                     "--metrics", root / "metrics.json", "--log-dir", root / "logs", "--run-dir", root / "run")


def _without_seconds(root: Path) -> tuple[dict, list[str]]:
    metrics = json.loads((root / "metrics.json").read_text())
    metrics.pop("seconds")
    history = [line.rsplit("\t", 1)[0] for line in (root / "logs" / "history.tsv").read_text().splitlines()]
    return metrics, history


@pytest.mark.fault("Faults", "pretrain_lm SIGKILLed at a random point after its first checkpoint: no LM or "
                   "metrics under final names; the rerun resumes from --run-dir and ends with the same metrics")
def test_training_killed_then_resumes(lm_data, tmp_path):
    ref = tmp_path / "ref"
    window = timed_work(pretrain_cmd(lm_data, ref), (ref / "run" / "checkpoint.pt").exists,
                        (ref / "metrics.json").exists)
    root = tmp_path / "killed"
    ckpt = root / "run" / "checkpoint.pt"
    kill_at_random_point(pretrain_cmd(lm_data, root), ckpt.exists, seed=3, window=window,
                         cleanup=lambda: shutil.rmtree(root, ignore_errors=True), done=(root / "metrics.json").exists)
    assert ckpt.exists()
    assert not (root / "lm").exists() and not (root / "metrics.json").exists()
    assert not [p for p in (root / "run").iterdir() if p.name != "checkpoint.pt" and not p.name.startswith(".tmp-")]
    again = subprocess.run(pretrain_cmd(lm_data, root), capture_output=True, text=True, timeout=600, env=stage_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stdout + again.stderr
    assert _without_seconds(root) == _without_seconds(ref)
    assert (root / "lm" / "lm.pt").is_file()
