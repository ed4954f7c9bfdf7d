"""Helpers for tests that drive the real `dvc`/`git` CLIs in a temporary copy of the repo.

What ran is read from DVC's own report: `dvc repro` prints one line per stage,
``Running stage 'X':``, ``Stage 'X' didn't change, skipping`` or
``Stage 'X' is cached - skipping run, checking out outputs``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
GIT_ID = ["-c", "user.name=dlpipe-tests", "-c", "user.email=tests@dlpipe.invalid", "-c", "commit.gpgsign=false"]
_LINE = re.compile(r"^(Running stage|Stage) '([^']+)'(.*)$")


def env(extra: dict | None = None) -> dict:
    """The environment for stage commands: this venv's python first on PATH, the data mirror set."""
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    e.setdefault("DLPIPE_MIRROR", str(REPO.parent / "shared" / "data"))
    e["DVC_NO_ANALYTICS"] = "1"
    e.update(extra or {})
    return e


def run(cwd: Path, *cmd: str, timeout: float = 300, check: bool = True, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command, failing with its output (not just the exit code) when ``check``."""
    p = subprocess.run(list(cmd), cwd=cwd, env=env(extra_env), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode} in {cwd}\n--- stdout\n{p.stdout[-4000:]}"
                             f"\n--- stderr\n{p.stderr[-4000:]}")
    return p


def dvc(cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run(cwd, sys.executable, "-m", "dvc", *args, **kw)


def git(cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run(cwd, "git", *GIT_ID, *args, **kw)


def commit_all(cwd: Path, msg: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "--allow-empty", "-m", msg)


@dataclass
class Repro:
    """Which stages one `dvc repro` ran, restored from the run-cache, or skipped (+ seconds per stage run)."""

    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    output: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


def parse_repro(output: str) -> Repro:
    r = Repro(output=output)
    for line in output.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        kind, name, rest = m.groups()
        if kind == "Running stage":
            r.ran.append(name)
        elif "is cached" in rest:
            r.cached.append(name)
        elif "didn't change" in rest:
            r.skipped.append(name)
    r.failed = re.findall(r"failed to reproduce '([^']+)'", output)
    return r


def repro(cwd: Path, *args: str, timeout: float = 900, extra_env: dict | None = None, check: bool = True) -> Repro:
    """`dvc repro ARGS`, timing each stage that runs from DVC's streamed `Running stage` lines."""
    import time

    cmd = [sys.executable, "-m", "dvc", "repro", *args]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env(extra_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    t0 = time.monotonic()
    lines, marks = [], []
    try:
        for line in proc.stdout:  # a killed child closes the pipe, ending the loop
            lines.append(line)
            if line.startswith("Running stage '"):
                marks.append((line.split("'")[1], time.monotonic()))
            if time.monotonic() - t0 > timeout:
                proc.kill()
                raise AssertionError(f"dvc repro {' '.join(args)} still running after {timeout:.0f} s in {cwd};"
                                     f" stage times so far: {_durations(marks, time.monotonic())}")
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines)
    if rc != 0 and check:
        raise AssertionError(f"dvc repro {' '.join(args)} exited {rc} in {cwd}\n{out[-5000:]}")
    r = parse_repro(out)
    r.seconds = _durations(marks, time.monotonic())
    return r


def _durations(marks: list[tuple[str, float]], end: float) -> dict[str, float]:
    ends = [t for _, t in marks[1:]] + [end]
    return {name: round(e - t, 1) for (name, t), e in zip(marks, ends)}


def snapshot(dest: Path, scale: str | None = "tiny") -> Path:
    """Copy the repo's tracked + untracked-not-ignored files to ``dest``, git init, set ``scale``, commit.

    The copy starts unbuilt: the repo's dvc.lock and reports/ record runs at another scale, so they
    are left out (a stage that has not run at this scale has no lock entry and no report).
    """
    from dlpipe.scales import apply_scale

    files = run(REPO, "git", "ls-files", "-co", "--exclude-standard", "-z").stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if rel == "dvc.lock" or rel.startswith("reports/") or not src.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel, follow_symlinks=False)
    git(dest, "init", "-q", "-b", "main")
    if scale:
        apply_scale(dest / "params.yaml", scale)
    commit_all(dest, f"snapshot at {scale} scale")
    return dest


def lock(cwd: Path) -> dict:
    path = cwd / "dvc.lock"
    return (yaml.safe_load(path.read_text()) or {}).get("stages", {}) if path.is_file() else {}


def set_param(cwd: Path, dotted: str, value) -> object:
    """Set a key in params.yaml (whole-file rewrite is fine in a temp copy); returns the old value."""
    path = cwd / "params.yaml"
    data = yaml.safe_load(path.read_text())
    node = data
    *parents, last = dotted.split(".")
    for p in parents:
        node = node[p]
    old, node[last] = node[last], value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return old


def get_param(cwd: Path, dotted: str):
    node = yaml.safe_load((cwd / "params.yaml").read_text())
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def _closure(cwd: Path, names, direction: str) -> set[str]:
    import networkx as nx
    from dvc.repo import Repo

    from dlpipe.dagcheck import stage_name

    with Repo(str(cwd)) as repo:
        g = repo.index.graph  # edges: stage -> the stages it depends on
        by_name = {stage_name(s, cwd): s for s in g.nodes}
        walk = nx.ancestors if direction == "down" else nx.descendants
        out = set(names)
        for n in names:
            if n in by_name:
                out |= {stage_name(s, cwd) for s in walk(g, by_name[n]) if getattr(s, "cmd", None)}
    return out


def downstream(cwd: Path, names) -> set[str]:
    """``names`` plus every stage that (transitively) depends on one of them."""
    return _closure(cwd, names, "down")


def upstream(cwd: Path, names) -> set[str]:
    """``names`` plus every stage they (transitively) depend on: what `dvc repro NAMES` builds."""
    return _closure(cwd, names, "up")


@contextmanager
def param_set(cwd: Path, dotted: str, value):
    """Set a params.yaml key for the duration of the block, then restore the file byte for byte."""
    path = cwd / "params.yaml"
    before = path.read_bytes()
    set_param(cwd, dotted, value)
    try:
        yield
    finally:
        path.write_bytes(before)


# ---------------------------------------------------------------- one tiny build per session

# What the shared tiny build reproduces: the forward ULMFiT chain (downloads, prepare, tokenize x6,
# numericalize x3, pretrain, fine-tune, classifier, evaluation) and one vision chain (MNIST backbone,
# mnist_sample index + features, head, evaluation) - every kind of stage of both tasks, about half the
# DAG's stages and time. `DLPIPE_TEST_TARGETS=all` builds the whole DAG (the tests then cover every
# stage); any other value is a space-separated list of stages.
DEFAULT_TARGETS = ("evaluate_classifier@fwd", "evaluate_vision@head-full")


def build_targets() -> tuple[str, ...]:
    """The stages the session build reproduces; () = the whole DAG."""
    raw = os.environ.get("DLPIPE_TEST_TARGETS")
    if raw is None:
        return DEFAULT_TARGETS
    return () if raw.strip() in ("", "all") else tuple(raw.replace(",", " ").split())


@dataclass
class Golden:
    """A tiny-scale repo after its first `dvc repro TARGETS` (params traced), committed. Never mutate it: copy."""

    repo: Path
    first: Repro
    trace: Path
    seconds: float
    targets: tuple[str, ...] = ()   # what `dvc repro` is given (() = the whole DAG)
    stages: tuple[str, ...] = ()    # every stage that built: the targets and their upstream, minus failures
    expected: tuple[str, ...] = ()  # every stage `dvc repro TARGETS` should have run
    failed: tuple[str, ...] = ()


_GOLDEN: dict[str, object] = {}
GOLDEN_TIMEOUT = 1800  # seconds for the first tiny repro (minutes of stage work on a loaded 2-core CPU)


def golden(tmp_path_factory, mirror: Path) -> Golden:
    """Build the session's golden repo once (the first test module that asks pays; a failure is remembered).

    ``DLPIPE_TEST_GOLDEN=<built repo>`` reuses one built by an earlier session (copied, never changed).
    """
    reuse = os.environ.get("DLPIPE_TEST_GOLDEN")
    return _once("g", lambda: _reuse(Path(reuse)) if reuse else _build(tmp_path_factory.mktemp("golden"), mirror),
                 "the tiny-scale `dvc repro` these tests share failed")


def _once(key: str, build, failure: str):
    """``build()`` once per session; an AssertionError is remembered and re-raised, never retried."""
    if key not in _GOLDEN:
        try:
            _GOLDEN[key] = build()
        except AssertionError as e:
            _GOLDEN[key] = e
    got = _GOLDEN[key]
    if isinstance(got, AssertionError):
        raise AssertionError(f"{failure}:\n{got}")
    return got


def _build(root: Path, mirror: Path) -> Golden:
    import time

    from dlpipe.dagcheck import load_stages

    trace, targets = root / "params-trace.jsonl", build_targets()
    t0 = time.perf_counter()
    repo = snapshot(root / "repo")
    names = [s.name for s in load_stages(repo)]
    expected = upstream(repo, targets) if targets else set(names)
    missing = set(targets) - set(names)
    if missing:
        raise AssertionError(f"DLPIPE_TEST_TARGETS names stages dvc.yaml does not have: {sorted(missing)}")
    first = repro(repo, "--keep-going", *targets, timeout=GOLDEN_TIMEOUT, check=False,
                  extra_env={"DLPIPE_MIRROR": str(mirror), "DLPIPE_PARAMS_TRACE": str(trace)})
    commit_all(repo, "tiny repro")
    broken = downstream(repo, set(first.failed)) if first.failed else set()
    g = Golden(repo, first, trace, time.perf_counter() - t0, targets,
               stages=tuple(n for n in names if n in expected and n not in broken),
               expected=tuple(n for n in names if n in expected), failed=tuple(first.failed))
    slowest = sorted(first.seconds.items(), key=lambda kv: -kv[1])[:8]
    print(f"\ngolden tiny repro {' '.join(targets) or '(whole DAG)'}: {len(first.ran)} stages, {g.seconds:.0f} s;"
          f" failed: {g.failed}; slowest: {slowest}")
    if not first.ran and not first.failed:
        raise AssertionError(f"dvc repro ran no stage:\n{first.output[-3000:]}")
    return g


def _reuse(repo: Path) -> Golden:
    from dlpipe.dagcheck import load_stages

    names, built, targets = [s.name for s in load_stages(repo)], set(lock(repo)), build_targets()
    expected = upstream(repo, targets) if targets else set(names)
    first = Repro(ran=[n for n in names if n in built])
    return Golden(repo, first, repo.parent / "params-trace.jsonl", 0.0, targets,
                  stages=tuple(n for n in names if n in built and n in expected),
                  expected=tuple(n for n in names if n in expected),
                  failed=tuple(n for n in names if n in expected and n not in built))


def copy_built(g: Golden, dest: Path) -> Path:
    """A full copy of the golden repo: git history, workspace, DVC cache and run-cache (``cp -a``)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("cp"):
        run(dest.parent, "cp", "-a", str(g.repo), str(dest))
    else:
        shutil.copytree(g.repo, dest, symlinks=True)
    return dest


def outs_digest(cwd: Path, stages=None) -> dict[str, str]:
    """{file: md5} for every file of every cached output of ``stages`` (default: all), i.e. what
    `dvc pull` must bring to a clone."""
    import hashlib

    from dvc.repo import Repo

    from dlpipe.dagcheck import stage_name

    digests = {}
    with Repo(str(cwd)) as repo:
        paths = [cwd / o.def_path for st in repo.index.stages for o in st.outs
                 if o.use_cache and (stages is None or stage_name(st, cwd) in stages)]
        for root in paths:
            files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
            for f in files:
                if not repo.dvcignore.is_ignored(repo.fs, str(f)):  # e.g. download stamps
                    digests[f.relative_to(cwd).as_posix()] = hashlib.md5(f.read_bytes()).hexdigest()
    return digests


# ---------------------------------------------------------------- two branches that differ in one param

# The knob the experiment and branch tests turn: the forward classifier's dropout multiplier. Its
# stage and evaluation take ~40 s at tiny scale, and the imdb chain's outputs are few files, so an
# experiment's temp workspace is quick to set up and commit (the vision chain's raw mnist_sample is
# 14k extracted PNGs: a minute of overhead per experiment). REPORTS: where its metrics land.
KNOB_STAGE, KNOB_KEY = "train_classifier@fwd", "imdb.train_classifier.drop_mult"
KNOB_REPORTS = {"train": "reports/imdb/train_classifier/fwd", "evaluate": "reports/imdb/evaluate/fwd"}


@dataclass
class Branches:
    """A copy of the golden repo with a branch that differs from ``main`` in KNOB_KEY only, made the
    README's way: `git checkout -b`, `dvc exp run -S KEY=VALUE` (results land in the workspace, and
    `dvc exp show` lists the experiment), `git commit`; then back on ``main`` with `dvc checkout`.
    Shared by every module that asks: only read it (experiments in temp dirs or the queue are fine)."""

    repo: Path
    key: str
    old: float
    new: float
    targets: tuple[str, ...]
    revs: tuple[str, str] = ("main", "knob-high")
    exp: str = "exp-high"
    ran: tuple[str, ...] = ()


def branches(tmp_path_factory, mirror: Path) -> Branches:
    """Build the session's Branches once (a failure is remembered, not retried)."""
    return _once("b", lambda: _branch(golden(tmp_path_factory, mirror), tmp_path_factory),
                 "making the two branches failed")


def _branch(g: Golden, tmp_path_factory) -> Branches:
    repo = copy_built(g, tmp_path_factory.mktemp("branches") / "repo")
    old = get_param(repo, KNOB_KEY)
    if KNOB_STAGE not in g.stages or not isinstance(old, (int, float)):
        raise AssertionError(f"the knob {KNOB_KEY} of {KNOB_STAGE} is not in this build ({g.stages})")
    # only the build targets that follow the knob: the experiment need not look at the other task
    targets = tuple(t for t in g.targets if t in downstream(repo, {KNOB_STAGE})) or g.targets
    b = Branches(repo, KNOB_KEY, old, old * 2, targets)
    git(repo, "checkout", "-q", "-b", b.revs[1])
    p = dvc(repo, "exp", "run", "-n", b.exp, "-S", f"{KNOB_KEY}={b.new}", *targets, timeout=900)
    b.ran = tuple(parse_repro(p.stdout + p.stderr).ran)
    commit_all(repo, f"{KNOB_KEY}={b.new}")
    git(repo, "checkout", "-q", b.revs[0])
    dvc(repo, "checkout", "--force", *(["--with-deps", *g.targets] if g.targets else []))
    return b


# ---------------------------------------------------------------- end-to-end tests (tests/stages/test_*_e2e.py)


def e2e_env(mirror: Path) -> dict:
    """Extra environment of e2e `dvc` runs: the data mirror, and OpenMP threads that sleep when idle.

    OMP_WAIT_POLICY=PASSIVE changes no result; on a loaded 2-core runner torch's spinning threads made a
    tiny head's epoch 15x slower (wall and CPU).
    """
    return {"DLPIPE_MIRROR": str(mirror), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def dvc_stdout(cwd: Path, mirror: Path, *args: str, timeout: float = 900) -> str:
    """`dvc ARGS` in ``cwd`` with :func:`e2e_env`; its stdout (a failure raises with both outputs' tails)."""
    return dvc(cwd, *args, timeout=timeout, extra_env=e2e_env(mirror)).stdout


def read_json(cwd: Path, rel: str) -> dict | list:
    """``cwd / rel`` parsed as JSON (a stage's metrics.json)."""
    import json

    return json.loads((cwd / rel).read_text())


def dry_run_with(repo: Path, mirror: Path, target: str, key: str, value) -> set[str]:
    """Set the dotted params key (``unet.train.lr``) in ``repo``'s params.yaml, then `dvc repro --dry
    target`: the stages DVC plans to rerun (the change stays, so successive calls accumulate)."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    *parents, leaf = key.split(".")
    node = params
    for part in parents:
        node = node[part]
    assert leaf in node, f"no params key {key}"
    node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return set(re.findall(r"Running stage '([^']+)'", dvc_stdout(repo, mirror, "repro", "--dry", target)))
