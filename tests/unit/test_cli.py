"""The dlpipe command line, called in-process (main(argv)) and once as a real subprocess."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlpipe.cli import human_bytes, main, stages_by_task


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_tasks_lists_download_stages_per_dataset(capsys, repo_root):
    rc, out, _ = run(capsys, "tasks", "--dvc-yaml", str(repo_root / "dvc.yaml"), "--params", str(repo_root / "params.yaml"))
    assert rc == 0
    line = next(l for l in out.splitlines() if l.startswith("data "))
    names = yaml.safe_load((repo_root / "params.yaml").read_text())["download"]["datasets"]
    assert all(f"download@{n}" in line for n in names)


def test_every_repo_stage_has_a_task(repo_root):
    groups = stages_by_task(repo_root / "dvc.yaml", repo_root / "params.yaml")
    assert "(no meta.task)" not in groups, groups.get("(no meta.task)")


def test_stage_expansion_foreach_dict_matrix_and_plain(tmp_path):
    (tmp_path / "params.yaml").write_text("sets: {a: 1, b: 2}\nlrs: [0.1, 0.01]\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "prep": {"cmd": "x", "meta": {"task": "t1"}},
        "each": {"foreach": "${sets}", "do": {"cmd": "y", "meta": {"task": "t1"}}},
        "grid": {"matrix": {"lr": "${lrs}", "bs": [8, 16]}, "cmd": "z", "meta": {"task": "t2"}},
        "loose": {"cmd": "w"},
    }}, sort_keys=False))
    groups = stages_by_task(tmp_path / "dvc.yaml", tmp_path / "params.yaml")
    assert groups == {"t1": ["prep", "each@a", "each@b"],
                      "t2": ["grid@0.1-8", "grid@0.1-16", "grid@0.01-8", "grid@0.01-16"],
                      "(no meta.task)": ["loose"]}


@pytest.mark.fault("Params", "foreach naming a missing params key: one line naming the key, exit 1")
def test_tasks_with_missing_foreach_key(capsys, tmp_path):
    (tmp_path / "params.yaml").write_text("other: 1\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    foreach: ${download.datasets}\n    do: {cmd: x}\n")
    rc, _, err = run(capsys, "tasks", "--dvc-yaml", str(tmp_path / "dvc.yaml"), "--params", str(tmp_path / "params.yaml"))
    assert rc == 1 and "missing key 'download'" in err and "stages.s.foreach" in err


def test_download_then_datasets_shows_verified(capsys, mirror, tmp_path):
    rc, out, _ = run(capsys, "download", "imdb_sample", "tinyshakespeare", "--dest", str(tmp_path), "--mirror", str(mirror))
    assert rc == 0 and "imdb_sample: 1 downloaded, 0 already verified" in out and "1 archive(s) extracted" in out
    rc, out, _ = run(capsys, "download", "imdb_sample", "--dest", str(tmp_path), "--mirror", str(mirror))
    assert "imdb_sample: 0 downloaded, 1 already verified" in out
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("To be, or not to be\n")
    rc, out, _ = run(capsys, "datasets", "--dest", str(tmp_path))
    rows = {l.split()[0]: l.split() for l in out.splitlines()[1:]}
    assert out.splitlines()[0].split() == ["name", "scale", "size", "files", "status", "license"]
    assert rows["imdb_sample"][1:6] == ["sample", "557.3", "KiB", "1", "verified"]
    assert rows["tinyshakespeare"][5] == "changed" and rows["mnist"][5] == "missing"
    assert rows["imdb_fastai"][1] == "full" and rows["imdb"][1] == "sample"


@pytest.mark.fault("Params", "unknown dataset name: one line listing the known names, exit 1")
def test_download_unknown_name(capsys, tmp_path):
    rc, out, err = run(capsys, "download", "imbd", "--dest", str(tmp_path))
    assert rc == 1 and out == "" and err.startswith("dlpipe download: unknown dataset 'imbd' (known datasets: ")
    assert "Traceback" not in err


def test_scale_command(capsys, tmp_path, repo_root):
    params = tmp_path / "params.yaml"
    params.write_text((repo_root / "params.yaml").read_text())
    (tmp_path / "scales").mkdir()
    for f in (repo_root / "scales").glob("*.yaml"):
        (tmp_path / "scales" / f.name).write_text(f.read_text())
    rc, out, _ = run(capsys, "scale", "tiny", "--params", str(params))
    assert rc == 0 and "scale tiny:" in out and "\n  scale" in out
    assert yaml.safe_load(params.read_text())["scale"] == "tiny"


def test_scale_rejects_unknown_name(capsys):
    with pytest.raises(SystemExit) as e:
        main(["scale", "huge"])
    assert e.value.code == 2 and "invalid choice: 'huge'" in capsys.readouterr().err


def test_console_script_in_a_repo_copy(tiny_repo):
    """`dlpipe` as a user runs it: a subprocess with the repo copy as working directory."""
    exe = Path(sys.executable).with_name("dlpipe")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "dlpipe.cli"]
    res = subprocess.run([*cmd, "tasks"], cwd=tiny_repo, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "download@imdb_sample" in res.stdout


@pytest.mark.parametrize("n,text", [(None, "?"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                    (570696, "557.3 KiB"), (3 * 1024**3, "3.0 GiB"), (5 * 1024**4, "5120.0 GiB")])
def test_human_bytes(n, text):
    assert human_bytes(n) == text
