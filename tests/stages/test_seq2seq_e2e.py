"""The translation task end to end at tiny scale: `dvc repro evaluate_seq2seq` in a temporary repo copy
(200 real Multi30k training pairs, 20 test pairs), then what a params change reruns."""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest

from dvc_helpers import dry_run_with, dvc_stdout, e2e_env, read_json, repro

STAGES = {"prepare_pairs", "numericalize_pairs@fr", "numericalize_pairs@en", "train_seq2seq", "evaluate_seq2seq"}


@pytest.mark.slow
def test_seq2seq_repro(tiny_repo: Path, mirror: Path):
    t0 = time.time()
    r = repro(tiny_repo, "evaluate_seq2seq", extra_env=e2e_env(mirror))
    print(f"tiny seq2seq repro: {time.time() - t0:.0f} s for {len(r.ran)} stages")
    assert STAGES <= set(r.ran)
    prep = read_json(tiny_repo, "reports/seq2seq/prepare_pairs/metrics.json")
    assert prep["train"]["pairs"] == 200 and prep["test"]["pairs"] == prep["valid"]["pairs"] == 20
    assert prep["train"]["max_len_fr"] <= 30 and prep["train"]["max_len_en"] <= 30     # the token cap
    fr = read_json(tiny_repo, "reports/seq2seq/numericalize_pairs/fr.json")
    assert fr["train"]["unk_rate"] == 0.0 and fr["test"]["docs"] == 20   # min_freq 1: every training token is known
    train = read_json(tiny_repo, "reports/seq2seq/train_seq2seq/metrics.json")
    assert train["n_train"] == 200 and train["target_tokens_per_s"] > 0 and train["teacher_forcing"] == [1.0, 0.25]
    m = read_json(tiny_repo, "reports/seq2seq/evaluate_seq2seq/metrics.json")
    assert m["n_test"] == 20 and m["decoding"] == "beam" and m["beam"]["k"] == 2
    assert 0.0 <= m["greedy"]["bleu"] <= 100.0 and m["bleu"] == m["beam"]["bleu"]
    assert m["beam"]["mean_score_gain"] >= 0.0          # beam never scores a sentence below greedy
    assert m["bleu_signature"].startswith("nrefs:1|") and "tok:13a" in m["bleu_signature"]
    assert 0.0 <= m["baseline_retrieval"]["bleu"] <= 100.0
    samples = (tiny_repo / "reports/seq2seq/evaluate_seq2seq/samples.md").read_text()
    assert "| source (fr) | reference (en) | greedy | beam 2 | retrieval baseline |" in samples
    assert samples.count("\n| ") == 1 + 3               # header + n_samples rows
    for png in ("evaluate_seq2seq/attention.png", "train_seq2seq/curves.png"):
        assert (tiny_repo / "reports/seq2seq" / png).read_bytes()[:4] == b"\x89PNG"
    assert not sorted((tiny_repo / "data" / "runs").rglob("checkpoint.pt"))   # a finished run keeps no checkpoint
    assert "up to date" in dvc_stdout(tiny_repo, mirror, "status", "evaluate_seq2seq")

    # one stage's params rerun that stage and its followers only (DVC's own plan)
    plan = partial(dry_run_with, tiny_repo, mirror, "evaluate_seq2seq")   # (key, value) -> the stages DVC would rerun
    assert plan("seq2seq.evaluate.beam", 3) == {"evaluate_seq2seq"}
    assert plan("seq2seq.train.epochs", 2) == {"train_seq2seq", "evaluate_seq2seq"}
    assert plan("seq2seq.numericalize.min_freq", 2) == STAGES - {"prepare_pairs"}
