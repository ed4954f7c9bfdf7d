"""The README's commands are the ones CI runs, and its sharing/comparing examples name the commands the
long tests exercise (tests/test_experiments.py, tests/test_remote.py). Fast: text only."""
from __future__ import annotations

import re

import pytest


def _readme_commands(repo_root) -> list[str]:
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no bash code block"
    return [ln.strip() for ln in block.group(1).splitlines() if ln.strip()]


def test_ci_runs_the_readme_test_command(repo_root):
    cmds = _readme_commands(repo_root)
    assert len(cmds) == 2, cmds
    test_cmd = cmds[1]
    assert "pytest" in test_cmd and "not long" not in test_cmd, "the README's test command must run every test"
    ci = [ln.strip() for ln in (repo_root / ".ci" / "run").read_text(encoding="utf-8").splitlines()
          if ln.strip() and not ln.lstrip().startswith("#")]
    assert ci[-1] == test_cmd, f".ci/run ends with {ci[-1]!r}, the README says {test_cmd!r}"


def test_long_marker_is_registered(repo_root):
    import tomllib

    cfg = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))
    markers = cfg["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("long:") for m in markers) and any(m.startswith("browser:") for m in markers)


@pytest.mark.parametrize("needle", [
    "dvc exp run", "dvc exp show", "dvc params diff main", "dvc metrics diff main", "dvc plots diff main",
    "dvc push --run-cache", "dvc pull", "dvc repro --pull", "s3://", "endpointurl",
])
def test_readme_shows_comparing_and_sharing(repo_root, needle):
    assert needle in (repo_root / "README.md").read_text(encoding="utf-8"), f"README.md does not show `{needle}`"
