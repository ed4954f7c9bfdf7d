"""Experiments and branches at tiny scale: `dvc exp run -S`, DVC's own queue, and `dvc metrics/params/
plots diff` between two git branches that differ in one hyperparameter."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dlpipe import dagcheck
from dvc_helpers import commit_all, copy_built, dvc, get_param, git, golden, repro, set_param

pytestmark = [pytest.mark.slow, pytest.mark.long]

# Preferred knobs, cheapest first: (stage, param key, two other values as functions of the current one).
KNOBS = [
    ("train_head", "vision.train_head.lr", lambda v: (v * 2, v / 2)),
    ("train_classifier", "imdb.train_classifier.lr", lambda v: (v * 2, v / 2)),
    ("pretrain_backbone", "vision.pretrain_backbone.lr", lambda v: (v * 2, v / 2)),
]
QUEUE_TIMEOUT = 600  # seconds for two queued tiny experiments on a loaded 2-core machine


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mirror) -> Path:
    return copy_built(golden(tmp_path_factory, mirror), tmp_path_factory.mktemp("exp") / "repo")


@pytest.fixture(scope="module")
def targets(tmp_path_factory, mirror) -> tuple[str, ...]:
    """The stages that built at tiny scale (empty: all of them)."""
    return golden(tmp_path_factory, mirror).targets


@pytest.fixture(scope="module")
def knob(repo, targets):
    """(stage, key, old value, (new1, new2)) for the cheapest knob this dvc.yaml has."""
    names = {s.name.split("@")[0] for s in dagcheck.load_stages(repo)}
    for stage, key, alt in KNOBS:
        old = get_param(repo, key)
        built_ok = not targets or any(t.split("@")[0] == stage for t in targets)
        if stage in names and isinstance(old, (int, float)) and built_ok:
            return stage, key, old, alt(old)
    pytest.skip(f"none of the stages/params {[k[1] for k in KNOBS]} exist yet")


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


def test_exp_run_sets_a_param_and_exp_show_lists_metrics(repo, knob, targets):
    stage, key, old, (new, _) = knob
    out = dvc(repo, "exp", "run", "--temp", "-n", "exp-knob", "-S", f"{key}={new}", *targets, timeout=600)
    assert "Running stage" in out.stdout + out.stderr
    exps = _exps(repo)
    assert "exp-knob" in exps, f"exp show lists {sorted(exps)}"
    params = exps["exp-knob"]["params"]
    assert params[f"params.yaml:{key}"] == pytest.approx(new)
    metrics = exps["exp-knob"]["metrics"]
    assert any(isinstance(v, (int, float)) for v in metrics.values()), f"no metrics in exp show: {metrics}"
    assert get_param(repo, key) == old, "--temp must leave the workspace's params.yaml alone"


def test_queue_runs_two_experiments(repo, knob, targets):
    stage, key, old, (a, b) = knob
    for name, value in (("q-a", a), ("q-b", b)):
        dvc(repo, "exp", "run", "--queue", "-n", name, "-S", f"{key}={value}", *targets)
    dvc(repo, "queue", "start", "-j", "1")
    try:
        deadline = time.monotonic() + QUEUE_TIMEOUT
        while time.monotonic() < deadline:
            status = dvc(repo, "queue", "status").stdout
            if "Queued" not in status and "Running" not in status:
                break
            time.sleep(5)
        else:
            pytest.fail(f"queue not done after {QUEUE_TIMEOUT} s:\n{status}")
    finally:
        dvc(repo, "queue", "stop", check=False)
    assert status.count("Success") >= 2, status
    exps = _exps(repo)
    for name, value in (("q-a", a), ("q-b", b)):
        assert exps[name]["params"][f"params.yaml:{key}"] == pytest.approx(value)
        assert exps[name]["metrics"], f"{name} has no metrics"


@pytest.fixture(scope="module")
def branches(repo, knob, targets):
    """Branch `knob-high` = main with the knob doubled, reproduced and committed; back on main after."""
    stage, key, old, (new, _) = knob
    git(repo, "checkout", "-q", "-b", "knob-high")
    set_param(repo, key, new)
    r = repro(repo, *targets)
    assert stage in r.ran or stage in r.cached
    commit_all(repo, f"{key}={new}")
    git(repo, "checkout", "-q", "main")
    dvc(repo, "checkout", "--force")
    return "main", "knob-high"


def test_params_diff_between_branches(repo, knob, branches):
    _, key, old, (new, _) = knob
    diff = json.loads(dvc(repo, "params", "diff", *branches, "--json").stdout)
    assert diff["params.yaml"][key] == {"old": old, "new": new}
    assert set(diff["params.yaml"]) == {key}, "only the knob differs between the branches"


def test_metrics_diff_between_branches(repo, knob, branches):
    stage = knob[0]
    diff = json.loads(dvc(repo, "metrics", "diff", *branches, "--json", "--all").stdout)
    files = [f for f in diff if f"/{stage}/" in f]
    assert files, f"no metrics of {stage} in metrics diff: {sorted(diff)}"
    changed = [m for f in files for m, v in diff[f].items() if v.get("old") != v.get("new")]
    assert changed, f"{stage}'s metrics are identical on both branches: {diff}"


def test_plots_diff_renders_curves_and_images(repo, branches, tmp_path):
    out = tmp_path / "plots"
    dvc(repo, "plots", "diff", *branches, "-o", str(out))
    html = (out / "index.html").read_text()
    assert "vega" in html.lower(), "no vega plot (history.tsv curves) in the HTML"
    assert "<img" in html, "no image plot (PNG) in the HTML"
