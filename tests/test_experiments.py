"""Experiments and branches at tiny scale: `dvc exp run -S <task>.<stage>.<param>=...` and `dvc exp show`,
DVC's own queue with two workers, and `dvc params/metrics/plots diff` between two git branches that
differ in one hyperparameter (the knob: dvc_helpers.KNOB_KEY, the forward classifier's dropout)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dvc_helpers import KNOB_KEY, KNOB_REPORTS, KNOB_STAGE, branches, downstream, dvc, get_param, golden

pytestmark = [pytest.mark.slow, pytest.mark.long]

QUEUE_TIMEOUT = 900  # seconds for two queued tiny experiments on a loaded 2-core machine


@pytest.fixture(scope="module")
def b(tmp_path_factory, mirror):
    """The session's two branches (dvc_helpers.branches): main, and knob-high made with `dvc exp run -S`."""
    g = golden(tmp_path_factory, mirror)
    if KNOB_STAGE not in g.stages:
        pytest.skip(f"{KNOB_STAGE} did not build at tiny scale")
    return branches(tmp_path_factory, mirror)


def _exps(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json` flattened to {experiment name: {"params": {...}, "metrics": {...}}}."""
    rows = json.loads(dvc(repo, "exp", "show", "--json", "--no-fetch").stdout)
    out = {}
    for row in rows:
        for exp in row.get("experiments") or []:
            for rev in exp.get("revs") or []:
                data = rev.get("data") or {}
                out[rev.get("name") or exp.get("name")] = {
                    "params": _flat(data.get("params")), "metrics": _flat(data.get("metrics"))}
    return out


def _flat(tree) -> dict:
    """{file: {"data": nested}} -> {"file:dot.ted.key": value}."""
    out = {}

    def walk(prefix, node):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}", v)
        else:
            out[prefix] = node
    for file, body in (tree or {}).items():
        for k, v in ((body or {}).get("data") or {}).items():
            walk(f"{file}:{k}", v)
    return out


def _metric(metrics: dict, report: str, name: str):
    """One metric of ``KNOB_REPORTS[report]``/metrics.json from a flattened `exp show` row."""
    key = f"{KNOB_REPORTS[report]}/metrics.json:{name}"
    hits = [v for k, v in metrics.items() if k.endswith(key)]
    assert hits, f"no {key} in {sorted(metrics)}"
    return hits[0]


def test_exp_run_sets_a_param_and_reruns_only_the_knob_and_its_followers(b):
    assert KNOB_STAGE in b.ran, b.ran
    assert set(b.ran) <= downstream(b.repo, {KNOB_STAGE}), f"the experiment reran stages above the knob: {b.ran}"


def test_exp_show_lists_the_experiment_with_its_params_and_metrics(b):
    exps = _exps(b.repo)
    assert b.exp in exps, f"exp show lists {sorted(exps)}"
    params, metrics = exps[b.exp]["params"], exps[b.exp]["metrics"]
    assert params[f"params.yaml:{KNOB_KEY}"] == pytest.approx(b.new)
    base = json.loads((b.repo / KNOB_REPORTS["train"] / "metrics.json").read_text())  # main's
    assert _metric(metrics, "train", "valid_loss") != base["valid_loss"], f"{KNOB_KEY} made no difference"
    assert isinstance(_metric(metrics, "evaluate", "accuracy"), float)
    table = dvc(b.repo, "exp", "show", "--csv", "--no-fetch").stdout
    assert b.exp in table and "valid_loss" in table, table[-3000:]


def test_queue_runs_two_experiments_on_two_workers(b):
    values = {"q-a": round(b.old * 1.4, 6), "q-b": b.old / 2}   # values no run has used: both must execute
    for name, value in values.items():   # the knob's stage alone: its metrics are what we compare
        dvc(b.repo, "exp", "run", "--queue", "-n", name, "-S", f"{KNOB_KEY}={value}", KNOB_STAGE)
    assert dvc(b.repo, "queue", "status").stdout.count("Queued") == 2
    dvc(b.repo, "queue", "start", "-j", "2")
    try:
        deadline = time.monotonic() + QUEUE_TIMEOUT
        while time.monotonic() < deadline:
            status = dvc(b.repo, "queue", "status").stdout
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(5)
        else:
            pytest.fail(f"queue not done after {QUEUE_TIMEOUT} s:\n{status}")
    finally:
        dvc(b.repo, "queue", "stop", check=False)
    assert status.count("Success") == 2, status + "\n" + "\n".join(
        dvc(b.repo, "queue", "logs", n, check=False).stdout[-2000:] for n in values)
    exps = _exps(b.repo)
    losses = set()
    for name, value in values.items():
        assert exps[name]["params"][f"params.yaml:{KNOB_KEY}"] == pytest.approx(value)
        losses.add(_metric(exps[name]["metrics"], "train", "valid_loss"))
    assert len(losses) == 2, f"both queued experiments report the same valid_loss: {losses}"
    assert get_param(b.repo, KNOB_KEY) == b.old, "queued experiments must leave the workspace alone"


def test_params_diff_between_branches(b):
    diff = json.loads(dvc(b.repo, "params", "diff", *b.revs, "--json").stdout)
    assert set(diff) == {"params.yaml"} and set(diff["params.yaml"]) == {KNOB_KEY}, f"only the knob differs: {diff}"
    assert (diff["params.yaml"][KNOB_KEY]["old"], diff["params.yaml"][KNOB_KEY]["new"]) == (b.old, b.new)
    text = dvc(b.repo, "params", "diff", *b.revs).stdout
    assert KNOB_KEY in text and str(b.old) in text and str(b.new) in text, text


def test_metrics_diff_between_branches(b):
    diff = json.loads(dvc(b.repo, "metrics", "diff", *b.revs, "--json", "--all").stdout)
    train = diff.get(f"{KNOB_REPORTS['train']}/metrics.json")
    assert train, f"no {KNOB_STAGE} metrics in metrics diff: {sorted(diff)}"
    assert train["valid_loss"]["old"] != train["valid_loss"]["new"], train
    task = KNOB_KEY.split(".")[0]
    moved = [f for f, m in diff.items() if f"/{task}/" not in f and any(v.get("old") != v.get("new") for v in m.values())]
    assert not moved, f"a {task} knob moved other tasks' metrics: {moved}"
    text = dvc(b.repo, "metrics", "diff", *b.revs).stdout
    assert f"{KNOB_REPORTS['train']}/metrics.json" in text and "valid_loss" in text, text


def test_plots_diff_renders_curves_and_confusion_matrices(b, tmp_path):
    out = tmp_path / "plots"
    dvc(b.repo, "plots", "diff", *b.revs, "-o", str(out))
    html = (out / "index.html").read_text()
    assert "vega" in html.lower() and f"{KNOB_REPORTS['train']}/history.tsv" in html, "no training curve in the HTML"
    imgs = [s.split('"')[1] for s in html.split("<img")[1:] if 'src="' in s]
    confusion = [s for s in imgs if "confusion" in s]
    for rev in b.revs:
        assert any(rev in s for s in confusion), f"no confusion matrix of {rev} among {imgs}"
    for src in imgs:
        if not src.startswith("data:"):
            assert (out / src).is_file(), f"image {src} referenced but not written"
