"""Fixtures shared by every test: the repo root, the offline data mirror and a tiny-scale repo copy."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["reliability_plugin"]

REPO = Path(__file__).resolve().parents[1]

# Stage commands in dvc.yaml say `python stages/...`, resolved through PATH as in an activated venv:
# put this interpreter's bin/ first, so `.venv/bin/python -m pytest` works without `activate`.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The dlpipe checkout these tests belong to."""
    return REPO


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline dataset mirror: ``$DLPIPE_MIRROR``, else ``<repo>/../shared/data``; skip if absent."""
    path = Path(os.environ.get("DLPIPE_MIRROR") or REPO.parent / "shared" / "data")
    if not (path / "manifest.json").is_file():
        pytest.skip(f"no dataset mirror at {path} (set DLPIPE_MIRROR to a copy of shared/data)")
    return path.resolve()


def _git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", "-c", "user.name=dlpipe-tests", "-c", "user.email=tests@dlpipe.invalid",
                          "-c", "commit.gpgsign=false", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Path:
    """A git-initialised copy of the repo's tracked + untracked-not-ignored files, at tiny scale.

    The copy is committed before ``dlpipe scale tiny`` is applied, so ``git diff`` there shows the
    scale change. The user's params.yaml is never touched.
    """
    from dlpipe.scales import apply_scale

    dest = tmp_path / "repo"
    files = _git(REPO, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if not src.is_file():  # deleted in the work tree but still in the index
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel, follow_symlinks=False)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "tiny_repo snapshot")
    apply_scale(dest / "params.yaml", "tiny")
    return dest
