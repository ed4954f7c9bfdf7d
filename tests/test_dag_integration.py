"""The real `dvc repro` at tiny scale in a temporary git+DVC copy: each stage reruns exactly when its
own inputs change, reverting an input restores results from the run-cache, and every stage reads
exactly the params it declares (checked from the $DLPIPE_PARAMS_TRACE of the full run).

Stages are found in dvc.yaml as it is; a change whose stage or param does not exist yet is skipped
with a reason. What ran is DVC's own report (`Running stage '...'` lines), see dvc_helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

from dlpipe import dagcheck
from dvc_helpers import copy_built, downstream, get_param, golden, lock, repro, set_param

pytestmark = [pytest.mark.slow, pytest.mark.long]

# (stage or foreach group, param key, new value from old). Whether followers rerun depends on whether
# the stage's outputs changed (DVC compares hashes), which the test reads from dvc.lock.
PARAM_CHANGES = [
    ("train_classifier", "imdb.train_classifier.lrs", lambda v: [x * 2 for x in v]),
    ("tokenize", "imdb.tokenize.chunk_size", lambda v: v + 1),
    ("train_head", "vision.train_head.lr", lambda v: v * 2),
]
VISION_ONLY_MODULE = "src/dlpipe/models/darknet.py"


@pytest.fixture(scope="module")
def built(tmp_path_factory, mirror):
    """A copy of the session's golden tiny repo (first full repro traced); yields (repo, report, trace)."""
    g = golden(tmp_path_factory, mirror)
    repo = copy_built(g, tmp_path_factory.mktemp("dag") / "repo")
    yield repo, g.first, g.trace, g.targets
    print(f"\nfull tiny repro: {len(g.first.ran)} stages in {g.seconds:.0f} s; per stage: {g.first.seconds}")


def _stage_names(repo: Path) -> list[str]:
    return [s.name for s in dagcheck.load_stages(repo)]


def _find_stages(repo: Path, short: str) -> set[str]:
    """The stage called ``short``, or every ``short@item`` of a foreach group."""
    return {n for n in _stage_names(repo) if n == short or n.startswith(short + "@")}


def _outs(lk: dict, names: set[str]) -> dict:
    """Data outputs only: reports/ (metrics, curves) carry timings and no stage depends on them."""
    return {n: [(o["path"], o.get("md5")) for o in lk.get(n, {}).get("outs", []) if not o["path"].startswith("reports/")]
            for n in names}


def test_full_repro_runs_every_stage_once(built):
    repo, first, _, targets = built
    if first.failed:
        pytest.fail(f"stages failed at tiny scale: {first.failed} (the other tests use the {len(targets)} "
                    f"stages that built)\n{first.output[-3000:]}")
    assert sorted(first.ran) == sorted(_stage_names(repo)), first.output[-3000:]
    assert len(first.ran) == len(set(first.ran))


def test_every_stage_reads_exactly_its_declared_params(built):
    repo, _, trace, targets = built
    reads = dagcheck.read_trace(trace) if trace.exists() else {}
    built_ok = set(targets or _stage_names(repo))
    problems = [p for st in dagcheck.load_stages(repo) if st.name in built_ok
                for p in dagcheck.check_params(st, reads.get(st.name, set()))]
    assert problems == [], "params: in dvc.yaml disagree with what stages load:\n" + "\n".join(problems)


def test_second_repro_runs_nothing(built):
    repo, _, _, targets = built
    r = repro(repo, *targets)
    assert r.ran == [] and r.cached == [], r.output[-3000:]
    assert sorted(r.skipped) == sorted(targets or _stage_names(repo))


def test_readme_edit_reruns_nothing(built):
    repo, _, _, targets = built
    readme = repo / "README.md"
    before = readme.read_text()
    readme.write_text(before + "\nA line no stage reads.\n")
    try:
        r = repro(repo, *targets)
        assert r.ran == [] and r.cached == [], r.output[-3000:]
    finally:
        readme.write_text(before)


def _change_and_revert(repo: Path, targets, apply, revert):
    """Apply a change, repro, revert it, repro again; returns both reports."""
    lock_before = lock(repo)
    apply()
    try:
        changed = repro(repo, *targets)
    finally:
        revert()
    restored = repro(repo, *targets)
    assert lock(repo) == lock_before, "reverting the change did not restore dvc.lock"
    return changed, restored


@pytest.mark.parametrize("short,key,bump", PARAM_CHANGES, ids=[c[1] for c in PARAM_CHANGES])
def test_param_change_reruns_stage_and_followers_only(built, short, key, bump):
    repo, _, _, targets = built
    stages, old = _find_stages(repo, short), get_param(repo, key)
    if not stages or old is None:
        pytest.skip(f"stage '{short}' or param '{key}' not in this repo's dvc.yaml/params.yaml yet")
    if targets and not stages <= set(targets):
        pytest.skip(f"{short} did not build at tiny scale (see test_full_repro_runs_every_stage_once)")
    before = lock(repo)
    set_param(repo, key, bump(old))
    try:
        changed = repro(repo, *targets)
        after = lock(repo)
    finally:
        set_param(repo, key, old)
    restored = repro(repo, *targets)
    ran, allowed = set(changed.ran), downstream(repo, stages)
    assert stages <= ran, f"{key} changed but {stages - ran} did not rerun\n{changed.output[-3000:]}"
    assert ran <= allowed, f"{key} reran unrelated stages: {ran - allowed}"
    if _outs(before, stages) != _outs(after, stages) and allowed - stages:
        assert ran - stages, f"{key} changed {short}'s outputs but no follower reran"
    elif _outs(before, stages) == _outs(after, stages):
        assert ran == stages, f"{short}'s outputs are unchanged, yet followers reran: {ran - stages}"
    # Run-cache: the old value's results come back without executing anything.
    assert restored.ran == [], restored.output[-3000:]
    assert lock(repo) == before, "setting the param back did not restore dvc.lock"
    lines = restored.output.splitlines()
    for st in stages:
        assert any(f"Stage '{st}' is cached - skipping run, checking out outputs" in ln for ln in lines), st


def test_vision_module_edit_reruns_only_its_importers(built):
    repo, _, _, targets = built
    importers = {st.name for st in dagcheck.load_stages(repo)
                 if VISION_ONLY_MODULE in dagcheck.required_files(st, repo)
                 and (not targets or st.name in targets)}
    if not importers:
        pytest.skip(f"no stage imports {VISION_ONLY_MODULE} yet")
    path = repo / VISION_ONLY_MODULE
    before = path.read_text()
    changed, restored = _change_and_revert(
        repo, targets, lambda: path.write_text(before + "\n# a comment: no behaviour change\n"),
        lambda: path.write_text(before))
    assert importers <= set(changed.ran), f"importers that did not rerun: {importers - set(changed.ran)}"
    allowed = downstream(repo, importers)
    assert set(changed.ran) <= allowed, f"unrelated stages reran: {set(changed.ran) - allowed}"
    assert restored.ran == [] and importers <= set(restored.cached), restored.output[-3000:]


def test_every_stage_is_up_to_date_after_the_tests(built):
    repo, _, _, targets = built
    r = repro(repo, *targets)
    assert r.ran == [] and r.cached == [], r.output[-3000:]


def test_dlpipe_status_names_the_changed_param(built):
    from dlpipe import status

    repo, _, _, targets = built
    found = [(c[0], c[1]) for c in PARAM_CHANGES if _find_stages(repo, c[0]) and get_param(repo, c[1]) is not None]
    if not found:
        pytest.skip("none of the PARAM_CHANGES stages exist yet")
    short, key = found[0]
    old = get_param(repo, key)
    set_param(repo, key, PARAM_CHANGES[[c[1] for c in PARAM_CHANGES].index(key)][2](old))
    try:
        rows = {r.stage: r for r in status.collect(repo)}
    finally:
        set_param(repo, key, old)
    for st in _find_stages(repo, short):
        assert rows[st].state == "changed" and f"params changed: {key}" in rows[st].reasons, rows[st]
    others = {n: r.state for n, r in rows.items() if n not in downstream(repo, _find_stages(repo, short))}
    assert set(others.values()) == {"up to date"}, others
