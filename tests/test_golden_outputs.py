"""The tiny-scale DAG's results are pinned: every data output's hash (from dvc.lock) and every
metrics file (timing keys dropped) of the session's tiny build must equal tests/golden/tiny_outputs.json.

A refactor that changes no behaviour leaves this file as it is; a deliberate change of results
regenerates it from a built repo and says why in its commit:

    .venv/bin/python tests/test_golden_outputs.py BUILT_REPO     # a tiny repo after `dvc repro` (whole DAG)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

REFERENCE = Path(__file__).parent / "golden" / "tiny_outputs.json"
# Keys that measure time, not results (throughput, seconds), and reports that carry them in every row.
TIMING = {"seconds", "epoch_seconds", "epoch_seconds_head_phase", "train_seconds", "images_per_s",
          "tokens_per_s", "words_per_s", "finetune_over_head_epoch_time", "time_to_accuracy"}
TIMED_FILES = ("history.tsv",)


def _drop_timing(x):
    if isinstance(x, dict):
        return {k: _drop_timing(v) for k, v in x.items() if k not in TIMING}
    return x


def results(repo: Path, stages=None) -> dict:
    """{"outs": {path: md5}, "metrics": {path: dict}} of ``stages`` (default: every stage in dvc.lock)."""
    lk = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    outs, metrics = {}, {}
    for name, st in lk.items():
        if stages is not None and name not in stages:
            continue
        for o in st.get("outs", []):
            path = o["path"]
            if path.endswith(".json") and path.startswith("reports/"):
                metrics[path] = _drop_timing(json.loads((repo / path).read_text()))
            elif not path.endswith(TIMED_FILES):
                outs[path] = o.get("md5")
    return {"outs": outs, "metrics": metrics}


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.fault("Determinism", "the tiny DAG's data outputs (dvc.lock hashes) and metrics equal the pinned "
                   "reference tests/golden/tiny_outputs.json")
def test_tiny_outputs_match_the_reference(tmp_path_factory, mirror):
    from dvc_helpers import golden

    g = golden(tmp_path_factory, mirror)
    ref = json.loads(REFERENCE.read_text())
    got = results(g.repo, set(g.stages))
    assert got["outs"], "the tiny build produced no outputs"
    moved = {p: (ref["outs"].get(p), h) for p, h in got["outs"].items() if ref["outs"].get(p) != h}
    assert not moved, f"data outputs differ from {REFERENCE.name} (reference, now): {moved}"
    changed = [p for p, m in got["metrics"].items() if ref["metrics"].get(p) != m]
    assert not changed, "metrics differ from the reference: " + "; ".join(
        f"{p}: {ref['metrics'].get(p)} -> {got['metrics'][p]}" for p in changed)


if __name__ == "__main__":
    repo = Path(sys.argv[1])
    REFERENCE.write_text(json.dumps(results(repo), indent=1, sort_keys=True) + "\n")
    print(f"{REFERENCE}: {len(json.loads(REFERENCE.read_text())['outs'])} outputs from {repo}")
