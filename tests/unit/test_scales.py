"""Scale overlays: identical key sets, exact round trips, user edits and comments preserved."""
from __future__ import annotations

import shutil
import subprocess
from functools import partial
from pathlib import Path

import pytest
import yaml

from dlpipe.core.params import ParamsError
from dlpipe.scales import SCALES, apply_scale, check_overlays, leaf_keys

fault = partial(pytest.mark.fault, "Params")


@pytest.fixture
def workdir(tmp_path, repo_root) -> Path:
    """A copy of the repo's params.yaml and scales/ (the real ones, never edited here)."""
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(repo_root / "scales", tmp_path / "scales")
    return tmp_path


def test_committed_overlays_have_identical_key_sets(repo_root):
    overlays = check_overlays(repo_root / "scales")
    assert {leaf_keys(o).__len__() for o in overlays.values()} == {len(leaf_keys(overlays["tiny"]))}
    for name in SCALES:
        assert overlays[name]["scale"] == name


def test_every_overlay_key_exists_in_params(repo_root):
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    flat = leaf_keys(params)
    for name, overlay in check_overlays(repo_root / "scales").items():
        assert leaf_keys(overlay) <= flat, f"scales/{name}.yaml: {leaf_keys(overlay) - flat}"


def test_params_yaml_is_at_sample_scale(repo_root, workdir):
    """The committed params.yaml is exactly params.yaml + sample overlay (switching to sample is a no-op)."""
    assert apply_scale(workdir / "params.yaml", "sample") == []
    assert (workdir / "params.yaml").read_text() == (repo_root / "params.yaml").read_text()


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line]


@pytest.mark.parametrize("other", ["tiny", "full"])
def test_switch_and_back_restores_committed_params(repo_root, workdir, other):
    """Values and comments come back; only a comment's column may move (a longer value pushed it)."""
    params, committed = workdir / "params.yaml", (repo_root / "params.yaml").read_text()
    changed = apply_scale(params, other)
    assert "scale" in changed and yaml.safe_load(params.read_text())["scale"] == other
    assert apply_scale(params, "sample") == changed
    text = params.read_text()
    assert yaml.safe_load(text) == yaml.safe_load(committed)
    assert _comments(text) == _comments(committed) and len(text.splitlines()) == len(committed.splitlines())


def test_user_edits_and_comments_survive(workdir):
    params = workdir / "params.yaml"
    text = params.read_text().replace("  seed: 42", "  seed: 7   # my own seed")
    params.write_text(text + "\n# my trailing note\nmy_section:\n  lr: 1e-3   # keep this\n")
    apply_scale(params, "tiny")
    out = params.read_text()
    assert "  seed: 7   # my own seed" in out and "# my trailing note" in out and "lr: 1e-3   # keep this" in out
    data = yaml.safe_load(out)
    assert data["runtime"]["seed"] == 7 and data["scale"] == "tiny"
    assert not list(workdir.glob(".tmp-*"))


def test_applying_twice_changes_nothing(workdir):
    apply_scale(workdir / "params.yaml", "full")
    before = (workdir / "params.yaml").read_text()
    assert apply_scale(workdir / "params.yaml", "full") == []
    assert (workdir / "params.yaml").read_text() == before


@fault("scale overlays with different key sets: error naming the key and the files lacking it")
def test_mismatched_overlay_keys_are_named(workdir):
    with open(workdir / "scales" / "full.yaml", "a") as fh:
        fh.write("runtime:\n  num_threads: 8\n")
    with pytest.raises(ParamsError) as e:
        apply_scale(workdir / "params.yaml", "tiny")
    assert "key 'runtime.num_threads' is in full.yaml but missing from tiny.yaml, sample.yaml" in str(e.value)


@fault("overlay key absent from params.yaml (typo): error naming the key")
def test_overlay_key_not_in_params(workdir):
    for name in SCALES:
        with open(workdir / "scales" / f"{name}.yaml", "a") as fh:
            fh.write("runtime_typo:\n  seed: 1\n")
    with pytest.raises(ParamsError, match=r"tiny.yaml: key 'runtime_typo' is not in params.yaml"):
        apply_scale(workdir / "params.yaml", "tiny")


@fault("unknown scale name: error listing the scales")
def test_unknown_scale(workdir):
    with pytest.raises(ParamsError, match=r"unknown scale 'huge' \(expected one of: tiny, sample, medium, full\)"):
        apply_scale(workdir / "params.yaml", "huge")


@fault("malformed overlay YAML: error naming the file")
def test_malformed_overlay(workdir):
    (workdir / "scales" / "sample.yaml").write_text("download: [unclosed\n")
    with pytest.raises(ParamsError, match=r"sample.yaml: not valid YAML"):
        apply_scale(workdir / "params.yaml", "tiny")


def test_tiny_repo_is_a_committed_copy_at_tiny_scale(tiny_repo, repo_root):
    assert yaml.safe_load((tiny_repo / "params.yaml").read_text())["scale"] == "tiny"
    assert yaml.safe_load((repo_root / "params.yaml").read_text())["scale"] == "sample"
    diff = subprocess.run(["git", "diff", "--name-only"], cwd=tiny_repo, capture_output=True, text=True, check=True)
    assert diff.stdout.split() == ["params.yaml"]
    assert (tiny_repo / "dvc.yaml").is_file() and (tiny_repo / ".dvc" / "config").is_file()
    assert not (tiny_repo / ".venv").exists() and not (tiny_repo / "data" / "raw").exists()
