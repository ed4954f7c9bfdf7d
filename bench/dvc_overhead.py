"""DVC overhead: no-op ``dvc repro`` and ``dvc status`` on the whole DAG, and an incremental rerun
after a classifier-only param change vs running the same stages' commands directly.

Works in a copy of the repo (``git ls-files -co --exclude-standard``, ``git init``, ``dlpipe
scale tiny``, DLPIPE_MIRROR=/work/shared/data, a ``dvc repro`` first) kept in bench/results/raw,
so the user's workspace and DVC cache are never touched and later runs rebuild only what changed. Incremental run r: set the param to a new
value and time ``dvc repro`` (the stages it says it ran are recorded); then set another new value
and time those stages' commands (from dvc.lock) run directly, in order: the same work without
DVC. A fresh value each time, so no stage can resume from its own checkpoint.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import yaml

from bench.common import RAW, ROOT, BenchError, fmt_stat, summarize, target

PARAM = ("imdb", "train_classifier", "wd")  # read only by train_classifier@{fwd,bwd}
VENV_BIN = Path(os.sys.executable).parent
_RUNNING = re.compile(r"Running stage '([^']+)'")
COPY = RAW / "dvc_repo"                  # the persistent tiny-scale copy of the repo
LOG = RAW / "logs" / "dvc_overhead.log"  # every command's output, appended (tail -f to follow)


def _env() -> dict:
    # PYTHONPATH: the copy's stages import the copy's src/, not the editable install's
    return {**os.environ, "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", "PYTHONPATH": str(COPY / "src"),
            "DLPIPE_MIRROR": os.environ.get("DLPIPE_MIRROR", "/work/shared/data"),
            "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}


def _sh(cmd: list[str] | str, cwd: Path, what: str, timeout: float = 1800) -> tuple[float, str]:
    """Run ``cmd`` in ``cwd``; return (seconds, combined output); raise BenchError on failure."""
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG, "a") as log:
        log.write(f"\n$ {cmd if isinstance(cmd, str) else ' '.join(cmd)}\n")
        log.flush()
        start = log.tell()
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=cwd, env=_env(), shell=isinstance(cmd, str), stdout=log,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
        secs = time.perf_counter() - t0
    with open(LOG) as log:
        log.seek(start)
        out = log.read()
    if p.returncode != 0:
        tail = "\n".join(out.splitlines()[-20:])
        raise BenchError(f"dvc_overhead: {what} failed (exit {p.returncode}) in {cwd} (log {LOG}):\n{tail}")
    return secs, out


def sync_copy(dest: Path) -> Path:
    """Make ``dest`` a git repo holding the repo's tracked + untracked-not-ignored files, at tiny scale.

    The copy persists in bench/results/raw (git-ignored) with its DVC cache, so a later bench run
    only rebuilds the stages whose inputs changed since the last one.
    """
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    dest.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("bench/", ".venv/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if not (dest / ".git").is_dir():
        _sh(["git", "init", "-q"], dest, "git init")
    _sh([str(VENV_BIN / "dlpipe"), "scale", "tiny"], dest, "dlpipe scale tiny")
    _sh(["git", "add", "-A"], dest, "git add")
    _sh("git diff --cached --quiet || git commit -qm 'bench copy'", dest, "git commit")
    return dest


def set_param(repo: Path, value: float) -> None:
    """Set imdb.train_classifier.wd in the copy's params.yaml (DVC compares values, not text)."""
    path = repo / "params.yaml"
    data = yaml.safe_load(path.read_text())
    node = data
    for key in PARAM[:-1]:
        if key not in node:
            raise BenchError(f"dvc_overhead: params.yaml has no '{'.'.join(PARAM)}' to change")
        node = node[key]
    node[PARAM[-1]] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def stage_cmds(repo: Path, stages: list[str]) -> list[str]:
    """The commands DVC ran for ``stages`` (interpolated, from dvc.lock), in the given order."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    cmds = []
    for s in stages:
        cmd = lock[s]["cmd"]
        cmds += cmd if isinstance(cmd, list) else [cmd]
    return cmds


def task_stages(repo: Path, task: str) -> list[str]:
    """Names of the dvc.yaml stages of ``task`` (``meta: {task: ...}``); foreach groups by their name."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    return [n for n, st in stages.items() if ((st.get("do") or st).get("meta") or {}).get("task") == task]


def catch_up(repo: Path, dvc: str) -> tuple[float, str, list[str], str | None]:
    """``dvc repro`` the whole DAG; if a stage fails, fall back to the imdb task's stages.

    Returns (seconds, output, targets used for the measurements ([] = whole DAG), failure or None).
    """
    try:
        t, out = _sh([dvc, "repro"], repo, "tiny-scale dvc repro of the copy", timeout=3600)
        return t, out, [], None
    except BenchError as e:
        failure = next((ln for ln in str(e).splitlines() if ln.startswith("ERROR")), str(e).splitlines()[0])
        targets = task_stages(repo, "imdb")
        if not targets:
            raise
        print(f"  dvc_overhead: whole DAG failed ({failure[:120]}); measuring the imdb task only", flush=True)
        t, out = _sh([dvc, "repro", *targets], repo, "tiny-scale dvc repro of the imdb stages", timeout=3600)
        return t, out, targets, failure


def _incremental(repo: Path, dvc: str, r: int, targets: list[str]) -> tuple[float, float, list[str]]:
    set_param(repo, round(0.0101 + 0.001 * r, 6))
    t_repro, out = _sh([dvc, "repro", *targets], repo, "incremental dvc repro")
    ran = _RUNNING.findall(out)
    set_param(repo, round(0.0301 + 0.001 * r, 6))
    t_direct = 0.0
    for cmd in stage_cmds(repo, ran):
        t_direct += _sh(cmd, repo, f"direct run of `{cmd[:60]}…`")[0]
    return t_repro, t_direct, ran


_SKIP = re.compile(r"Stage '([^']+)' didn't change")


def _growth(repo: Path, dvc: str, targets: list[str]) -> dict:
    """No-op `dvc repro` time against the number of stages it checks: one task, the other, the whole DAG;
    a least-squares line gives DVC's fixed cost and its cost per stage."""
    pts = []
    for tg in ([task_stages(repo, "vision")], [task_stages(repo, "imdb")], [targets]):
        t, out = _sh([dvc, "repro", *tg[0]], repo, "no-op dvc repro (growth)")
        pts.append((len(_SKIP.findall(out)), t))
    n, t = np.array([p[0] for p in pts], float), np.array([p[1] for p in pts])
    slope, fixed = np.polyfit(n, t, 1) if len(set(n)) > 1 else (0.0, float(t.mean()))
    return {"stages": [int(x) for x in n], "seconds": [round(float(x), 2) for x in t],
            "per_stage_s": float(slope), "fixed_s": float(fixed)}


def run(peer_py, runs: int, quick: bool) -> dict:
    dvc = str(VENV_BIN / "dvc")
    LOG.unlink(missing_ok=True)
    repo = sync_copy(COPY)
    print(f"  dvc_overhead: tiny-scale dvc repro in {repo} (brings the copy up to date; log {LOG})", flush=True)
    t_full, out_full, targets, failure = catch_up(repo, dvc)
    n_stages = len(_RUNNING.findall(out_full))
    n_total = len(yaml.safe_load((repo / "dvc.lock").read_text())["stages"])
    noop = summarize([_sh([dvc, "repro", *targets], repo, "no-op dvc repro")[0] for _ in range(runs)])
    growth = _growth(repo, dvc, targets)
    status = summarize([_sh([dvc, "status", *targets], repo, "dvc status")[0] for _ in range(runs)])
    inc = []
    for r in range(runs):
        print(f"  dvc_overhead: incremental run {r + 1}/{runs}", flush=True)
        inc.append(_incremental(repo, dvc, r, targets))
    repro = summarize([i[0] for i in inc])
    direct = summarize([i[1] for i in inc])
    ratio_ex = summarize([(i[0] - status["median"]) / i[1] for i in inc])
    ran = inc[0][2]
    s = lambda v: f"{v:.2f} s"  # noqa: E731
    scope = "whole DAG" if not targets else "imdb stages"
    rows = [[f"no-op `dvc repro` ({scope})", fmt_stat(noop, s), "–"],
            [f"`dvc status` ({scope}) = fixed start-up", fmt_stat(status, s), "–"],
            [f"incremental `dvc repro` after a {'.'.join(PARAM)} change", fmt_stat(repro, s),
             f"{repro['median'] / direct['median']:.2f}× the direct run"],
            [f"the same {len(ran)} stage command(s) run directly", fmt_stat(direct, s), "1.00×"],
            ["(incremental − start-up) ÷ direct", fmt_stat(ratio_ex, lambda v: f"{v:.2f}×"), "target ≤ 1.10×"]]
    return {"title": f"6. DVC overhead (tiny scale, {scope})",
            "measured": {"noop_repro_s": noop, "noop_growth": growth, "status_s": status, "incremental_repro_s": repro,
                         "direct_stages_s": direct, "ratio_excl_startup": ratio_ex, "stages_rerun": ran,
                         "catch_up_repro_s": t_full, "catch_up_stages": n_stages, "n_stages": n_total},
            "notes": [f"A copy of the repo in bench/results/raw/dvc_repo (`git ls-files -co --exclude-standard`, "
                      f"`git init`, `dlpipe scale tiny`), kept between bench runs with its DVC cache; bringing it up "
                      f"to date ran {n_stages} of its {n_total} stages in {t_full:.0f} s.",
                      f"Incremental: `{'.'.join(PARAM)}` set to a new value; DVC reran: {', '.join(ran) or 'nothing'}. "
                      "Direct = those stages' commands from dvc.lock run by hand after another new value "
                      "(the same work, no DVC).",
                      f"{runs} run(s) of each.",
                      f"No-op growth: {growth['per_stage_s']:.3f} s per stage over a fixed {growth['fixed_s']:.2f} s "
                      f"(least squares over no-op repros of {', '.join(str(n) for n in growth['stages'])} stages)."
                      ] + ([] if not failure else [
                      f"**The whole DAG did not reproduce** (`{failure[:200]}`), so every measurement here targets "
                      f"the imdb task's stages ({', '.join(targets)}) instead of the whole DAG."]),
            "scope": scope, "whole_dag_failure": failure,
            "tables": [{"caption": "wall seconds", "headers": ["what", "seconds", "ratio"], "rows": rows}],
            "targets": [target("(incremental repro − dvc status) ÷ direct stage run", ratio_ex["median"], "<=", 1.1)]}
