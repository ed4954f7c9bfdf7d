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
    """Copy the repo's tracked + untracked-not-ignored files to ``dest``, git init, set ``scale``, commit."""
    from dlpipe.scales import apply_scale

    files = run(REPO, "git", "ls-files", "-co", "--exclude-standard", "-z").stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
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


def downstream(cwd: Path, names: set[str]) -> set[str]:
    """``names`` plus every stage that (transitively) depends on one of them."""
    import networkx as nx
    from dvc.repo import Repo

    from dlpipe.dagcheck import stage_name

    with Repo(str(cwd)) as repo:
        g = repo.index.graph  # edges: stage -> the stages it depends on
        by_name = {stage_name(s, cwd): s for s in g.nodes}
        out = set(names)
        for n in names:
            if n in by_name:
                out |= {stage_name(s, cwd) for s in nx.ancestors(g, by_name[n])}
    return out


# ---------------------------------------------------------------- one full tiny build per session


@dataclass
class Golden:
    """A tiny-scale repo after its first full `dvc repro` (traced), committed. Never mutate it: copy."""

    repo: Path
    first: Repro
    trace: Path
    seconds: float
    targets: tuple[str, ...] = ()   # empty: the whole DAG built; else the stages that did (see `failed`)
    failed: tuple[str, ...] = ()


_GOLDEN: dict[str, object] = {}
GOLDEN_TIMEOUT = 1800  # seconds for the first full tiny repro (minutes of stage work on a loaded 2-core CPU)


def golden(tmp_path_factory, mirror: Path) -> Golden:
    """Build the session's golden repo once (the first test module that asks pays; a failure is remembered).

    ``DLPIPE_TEST_GOLDEN=<built repo>`` reuses one built by an earlier session (copied, never changed).
    """
    reuse = os.environ.get("DLPIPE_TEST_GOLDEN")
    if reuse and "g" not in _GOLDEN:
        from dlpipe.dagcheck import load_stages

        repo = Path(reuse)
        names = [s.name for s in load_stages(repo)]
        built = set(lock(repo))
        targets = () if built >= set(names) else tuple(n for n in names if n in built)
        _GOLDEN["g"] = Golden(repo, Repro(), repo.parent / "params-trace.jsonl", 0.0, targets)
    if "g" not in _GOLDEN:
        import time

        root = tmp_path_factory.mktemp("golden")
        trace = root / "params-trace.jsonl"
        t0 = time.perf_counter()
        try:
            repo = snapshot(root / "repo")
            first = repro(repo, "--keep-going", timeout=GOLDEN_TIMEOUT, check=False,
                          extra_env={"DLPIPE_MIRROR": str(mirror), "DLPIPE_PARAMS_TRACE": str(trace)})
            commit_all(repo, "tiny repro")
            g = Golden(repo, first, trace, time.perf_counter() - t0)
            if first.failed:  # test what did build; test_full_repro names the broken stages
                from dlpipe.dagcheck import load_stages

                broken = downstream(repo, set(first.failed))
                g.targets = tuple(s.name for s in load_stages(repo) if s.name not in broken)
                g.failed = tuple(first.failed)
            _GOLDEN["g"] = g
            slowest = sorted(first.seconds.items(), key=lambda kv: -kv[1])[:8]
            print(f"\ngolden tiny repro: {len(first.ran)} stages, {g.seconds:.0f} s; failed: {g.failed}; slowest: {slowest}")
        except AssertionError as e:
            _GOLDEN["g"] = e
    g = _GOLDEN["g"]
    if isinstance(g, AssertionError):
        raise AssertionError(f"the tiny-scale `dvc repro` these tests share failed:\n{g}")
    return g


def copy_built(g: Golden, dest: Path) -> Path:
    """A full copy of the golden repo: git history, workspace, DVC cache and run-cache."""
    shutil.copytree(g.repo, dest, symlinks=True)
    return dest


def outs_digest(cwd: Path) -> dict[str, str]:
    """{file: md5} for every file of every cached output (what `dvc pull` must bring to a clone)."""
    import hashlib

    from dvc.repo import Repo

    digests = {}
    with Repo(str(cwd)) as repo:
        paths = [cwd / o.def_path for st in repo.index.stages for o in st.outs if o.use_cache]
        for root in paths:
            files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
            for f in files:
                if not repo.dvcignore.is_ignored(repo.fs, str(f)):  # e.g. download stamps
                    digests[f.relative_to(cwd).as_posix()] = hashlib.md5(f.read_bytes()).hexdigest()
    return digests
