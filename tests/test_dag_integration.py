"""The real `dvc repro` at tiny scale in a temporary git+DVC copy: each stage reruns exactly when its
own inputs change, reverting an input restores results from the run-cache, and every stage reads
exactly the params it declares (checked from the $DLPIPE_PARAMS_TRACE of the first run).

The session's tiny build (dvc_helpers.golden) reproduces the forward ULMFiT chain up to
`evaluate_classifier@fwd` and the vision chain up to `evaluate_vision@head-full`; every `dvc repro`
here is given those targets (`DLPIPE_TEST_TARGETS=all` builds and checks the whole DAG instead).
What ran is DVC's own report (`Running stage` / `is cached` / `didn't change` lines), see dvc_helpers."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dlpipe import dagcheck
from dvc_helpers import copy_built, downstream, get_param, golden, lock, param_set, repro, run

pytestmark = [pytest.mark.slow, pytest.mark.long]

# (stage or foreach group, param key, new value from old). Which followers rerun is DVC's rule, checked
# from dvc.lock (_expect_reruns): the classifier's new weights move its evaluation; chunk_size only
# changes how tokenize batches documents, so the token stores come out byte-identical and the wave
# stops at tokenize; the head's new weights move its evaluation.
PARAM_CHANGES = [
    ("train_classifier", "imdb.train_classifier.lrs", lambda v: [x * 2 for x in v]),
    ("tokenize", "imdb.tokenize.chunk_size", lambda v: v + 1),
    ("train_head", "vision.train_head.lr", lambda v: v * 2),
]
# Imported by vision stages only; in the tiny build by train_head@full and evaluate_vision@head-full
# (models/darknet.py would do too, and rerun the backbone and features as well: twice the time).
VISION_ONLY_MODULE = "src/dlpipe/vision/heads.py"


@pytest.fixture(scope="module")
def g(tmp_path_factory, mirror):
    """The session's golden build; its repo is never changed here."""
    return golden(tmp_path_factory, mirror)


@pytest.fixture(scope="module")
def repo(g, tmp_path_factory) -> Path:
    """This module's own copy of the golden repo (workspace, git history, cache and run-cache)."""
    r = copy_built(g, tmp_path_factory.mktemp("dag") / "repo")
    yield r
    print(f"\ntiny repro {' '.join(g.targets) or '(whole DAG)'}: {len(g.first.ran)} stages in {g.seconds:.0f} s;"
          f" per stage: {g.first.seconds}")


def _find_stages(g, short: str) -> set[str]:
    """The built stage called ``short``, or every built ``short@item`` of a foreach group."""
    return {n for n in g.stages if n == short or n.startswith(short + "@")}


def _expect_reruns(before: dict, after: dict, changed: set[str], ran: list[str], built) -> None:
    """DVC's rule, checked from dvc.lock: a built stage reruns iff its own inputs changed (``changed``)
    or one of its deps is an output whose hash moved (upstream outputs that came out identical stop
    the wave). Nothing outside ``built`` runs."""
    def outs(lk):
        return {o["path"]: o.get("md5") for st in lk.values() for o in st.get("outs", [])}

    old, new = outs(before), outs(after)
    moved = {p for p in new if new[p] != old.get(p)}

    def moved_dep(dep: str) -> bool:
        return any(dep == p or dep.startswith(p + "/") or p.startswith(dep + "/") for p in moved)

    expected = {s for s in built if s in changed or any(moved_dep(d["path"]) for d in before[s].get("deps", []))}
    assert sorted(ran) == sorted(expected), (f"ran {sorted(ran)}, but the changed inputs call for {sorted(expected)}"
                                             f" (outputs that moved: {sorted(moved)})")


def test_first_repro_runs_each_needed_stage_once(g):
    if g.failed:
        pytest.fail(f"stages failed at tiny scale: {list(g.failed)} (the other tests use the {len(g.stages)} "
                    f"stages that built)\n{g.first.output[-3000:]}")
    assert sorted(g.first.ran) == sorted(g.expected), g.first.output[-3000:]
    assert len(g.first.ran) == len(set(g.first.ran))
    assert set(lock(g.repo)) == set(g.expected), "dvc.lock should record exactly the stages that ran"


def test_every_stage_reads_exactly_its_declared_params(g):
    if not g.trace.exists():
        pytest.skip(f"no params trace at {g.trace} (a reused DLPIPE_TEST_GOLDEN without one)")
    reads = dagcheck.read_trace(g.trace)
    assert reads, f"the traced run recorded no params reads in {g.trace}"
    problems = [p for st in dagcheck.load_stages(g.repo) if st.name in g.stages
                for p in dagcheck.check_params(st, reads.get(st.name, set()))]
    assert problems == [], "params: in dvc.yaml disagree with what stages load:\n" + "\n".join(problems)


def test_second_repro_runs_nothing(g, repo):
    r = repro(repo, *g.targets)
    assert r.ran == [] and r.cached == [], r.output[-3000:]
    assert sorted(r.skipped) == sorted(g.stages)


def test_readme_edit_reruns_nothing(g, repo):
    readme = repo / "README.md"
    before = readme.read_bytes()
    readme.write_bytes(before + b"\nA line no stage reads.\n")
    try:
        r = repro(repo, *g.targets)
        assert r.ran == [] and r.cached == [], r.output[-3000:]
    finally:
        readme.write_bytes(before)


@pytest.mark.parametrize("short,key,bump", PARAM_CHANGES, ids=[c[1] for c in PARAM_CHANGES])
def test_param_change_reruns_stage_and_followers_then_run_cache_restores(g, repo, short, key, bump):
    stages, old = _find_stages(g, short), get_param(repo, key)
    if not stages or old is None:
        pytest.skip(f"stage '{short}' did not build, or param '{key}' is not in params.yaml")
    before = lock(repo)
    with param_set(repo, key, bump(old)):
        changed = repro(repo, *g.targets)
        after = lock(repo)
    assert stages <= set(changed.ran), f"{key} changed but {stages - set(changed.ran)} did not rerun"
    assert set(changed.ran) <= downstream(repo, stages), f"{key} reran unrelated stages"
    _expect_reruns(before, after, stages, changed.ran, g.stages)
    # Run-cache: back at the old value, every stage that ran is restored without executing.
    restored = repro(repo, *g.targets)
    assert restored.ran == [], f"setting {key} back executed stages\n{restored.output[-3000:]}"
    assert sorted(restored.cached) == sorted(changed.ran), restored.output[-3000:]
    for st in stages:
        assert f"Stage '{st}' is cached - skipping run, checking out outputs" in restored.output, st
    assert lock(repo) == before, "setting the param back did not restore dvc.lock"


def test_vision_module_edit_reruns_only_its_importers_and_followers(g, repo):
    stages = dagcheck.load_stages(repo)
    users = {st.name: st.task for st in stages if VISION_ONLY_MODULE in dagcheck.required_files(st, repo)}
    assert set(users.values()) == {"vision"}, f"{VISION_ONLY_MODULE} is not vision-only: {users}"
    importers = set(users) & set(g.stages)
    if not importers:
        pytest.skip(f"no built stage imports {VISION_ONLY_MODULE}")
    path = repo / VISION_ONLY_MODULE
    before_text, before = path.read_bytes(), lock(repo)
    path.write_bytes(before_text + b"\n# a comment: no behaviour change\n")
    try:
        changed = repro(repo, *g.targets)
        after = lock(repo)
    finally:
        path.write_bytes(before_text)
    assert importers <= set(changed.ran), f"importers that did not rerun: {importers - set(changed.ran)}"
    _expect_reruns(before, after, importers, changed.ran, g.stages)
    tasks = {st.name: st.task for st in stages}
    assert {tasks[s] for s in changed.ran} == {"vision"}, changed.ran
    restored = repro(repo, *g.targets)
    assert restored.ran == [] and sorted(restored.cached) == sorted(changed.ran), restored.output[-3000:]
    assert lock(repo) == before


def test_dlpipe_status_per_task_names_the_changed_param(g, repo):
    from dlpipe import status

    short, key, bump = PARAM_CHANGES[0]
    stages, old = _find_stages(g, short), get_param(repo, key)
    if not stages or old is None:
        pytest.skip(f"stage '{short}' did not build, or param '{key}' is not in params.yaml")
    rows = {r.stage: r for r in status.collect(repo)}
    assert {rows[s].state for s in g.stages} == {"up to date"}
    assert all(r.state == "never run" for n, r in rows.items() if n not in g.stages), \
        {n: r.state for n, r in rows.items() if n not in g.stages}
    with param_set(repo, key, bump(old)):
        rows = {r.stage: r for r in status.collect(repo)}
        cli = run(repo, str(Path(sys.executable).parent / "dlpipe"), "status").stdout   # the console script
    followers = downstream(repo, stages) - stages
    for st in stages:
        assert rows[st].state == "changed" and f"params changed: {key}" in rows[st].reasons, rows[st]
        assert rows[st].task == "imdb"
    for st in followers & set(g.stages):
        (why,) = rows[st].reasons
        assert rows[st].state == "upstream" and why.startswith("upstream changed: "), rows[st]
        assert set(why.split(": ", 1)[1].split(", ")) <= stages, rows[st]
    others = {n: rows[n].state for n in g.stages if n not in stages | followers}
    assert set(others.values()) == {"up to date"}, others
    # The CLI groups stages by task and gives the reason on the changed stage's line.
    assert [ln for ln in cli.splitlines() if ln.startswith("task ")] == ["task data", "task imdb", "task cifar", "task seq2seq", "task vision", "task unet", "task superres", "task style"], cli
    line = next(ln for ln in cli.splitlines() if ln.split()[:1] == [sorted(stages)[0]])
    assert "changed" in line and f"params changed: {key}" in line, line
    assert cli.rstrip().splitlines()[-1].startswith(f"{len(g.stages) - len(stages) - len(followers & set(g.stages))} up to date")


def test_dlpipe_metrics_shows_each_built_stage_metrics(g, repo):
    """The README's first command ends with `dlpipe metrics`: every metrics file of a stage the build
    ran is listed under its task with its values; files of stages not built say so."""
    out = run(repo, str(Path(sys.executable).parent / "dlpipe"), "metrics").stdout.splitlines()
    assert {ln for ln in out if ln.startswith("task ")} <= {"task imdb", "task cifar", "task seq2seq", "task vision", "task unet", "task superres", "task style"}, out[:5]
    blocks, path = {}, None
    for ln in out:
        if ln.startswith("  ") and not ln.startswith("    "):
            path = ln.strip()
            blocks[path] = ""
        elif ln.startswith("    "):
            blocks[path] += ln.strip() + "  "
    ev = "reports/imdb/evaluate/fwd/metrics.json"
    if "evaluate_classifier@fwd" in g.stages:
        assert ev in blocks and "accuracy " in blocks[ev] and "tfidf_baseline.test " in blocks[ev], blocks.get(ev)
    built = [p for p, text in blocks.items() if not text.startswith("missing or unreadable")]
    assert built and all((repo / p).is_file() for p in built)
    assert all(not (repo / p).exists() for p, text in blocks.items() if text.startswith("missing or unreadable"))


def test_every_stage_is_up_to_date_after_the_tests(g, repo):
    r = repro(repo, *g.targets)
    assert r.ran == [] and r.cached == [], r.output[-3000:]
