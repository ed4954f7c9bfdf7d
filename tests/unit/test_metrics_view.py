"""`dlpipe metrics`: DVC's metrics grouped by task, one readable block per file."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dlpipe.cli import main as dlpipe_main
from dlpipe.core.errors import DataError
from dlpipe.metrics_view import flatten, fmt, pack, read_dvc_metrics, render, task_of

FILES = {
    "reports/imdb/ensemble/metrics.json": {"ensemble_accuracy": 0.6633333, "n_valid": 200},
    "reports/imdb/evaluate/fwd/metrics.json": {"accuracy": 0.61, "tfidf_baseline": {"accuracy": 0.81},
                                              "beats_baseline": False},
    "reports/vision/transfer/metrics.json": {"error": "No such file or directory"},
}


def test_flatten_dots_nested_keys_and_keeps_lists_as_leaves():
    assert flatten({"b": {"y": 1, "x": {"z": [1, 2]}}, "a": 0.5}) == [("a", 0.5), ("b.x.z", [1, 2]), ("b.y", 1)]
    assert flatten({}) == []


@pytest.mark.parametrize("value, text", [(0.6633333, "0.6633"), (12396, "12396"), (False, "false"),
                                         (None, "null"), ("fwd", '"fwd"'), (1234567.8, "1.235e+06")])
def test_fmt(value, text):
    assert fmt(value) == text


def test_pack_never_splits_an_item_and_respects_the_width():
    items = [f"key_{i} {i * 1111}" for i in range(12)]
    lines = pack(items, 30, indent="  ")
    assert all(len(ln) <= 30 for ln in lines)
    assert "  ".join(ln.strip() for ln in lines).split("  ") == items
    assert pack(["x" * 50], 30, indent="  ") == ["  " + "x" * 50]      # too long alone: its own line


def test_task_of():
    assert task_of("reports/imdb/evaluate/fwd/metrics.json") == "imdb"
    assert task_of("metrics.json") == "metrics.json" and task_of("other/m.json") == "other"


def test_render_groups_by_task_and_shows_unreadable_files():
    text = render(FILES)
    assert [ln for ln in text.splitlines() if ln.startswith("task ")] == ["task imdb", "task vision"]
    assert "    ensemble_accuracy 0.6633  n_valid 200" in text.splitlines()
    assert "beats_baseline false  tfidf_baseline.accuracy 0.81" in text
    assert "missing or unreadable: No such file or directory" in text
    only = render(FILES, task="vision")
    assert "imdb" not in only and only.splitlines()[0] == "task vision"
    with pytest.raises(DataError, match=r"no metrics for task 'text' \(tasks with metrics: imdb, vision\)"):
        render(FILES, task="text")


def test_reads_what_dvc_declares_in_a_real_repo(tmp_path, capsys):
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([dvc, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  a:\n    cmd: 'true'\n    metrics:\n      - reports/imdb/a/metrics.json: {cache: false}\n"
        "      - reports/imdb/b/metrics.json: {cache: false}\n")
    (tmp_path / "reports/imdb/a").mkdir(parents=True)
    (tmp_path / "reports/imdb/a/metrics.json").write_text(json.dumps({"accuracy": 0.75, "per_class": {"pos": 1}}))
    files = read_dvc_metrics(tmp_path)
    assert files["reports/imdb/a/metrics.json"] == {"accuracy": 0.75, "per_class": {"pos": 1}}
    assert "No such file" in files["reports/imdb/b/metrics.json"]["error"]       # declared, never written
    assert dlpipe_main(["metrics", "--root", str(tmp_path), "--task", "imdb"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["task imdb", "  reports/imdb/a/metrics.json", "    accuracy 0.75  per_class.pos 1"]


def test_outside_a_dvc_repo_the_error_names_the_directory(tmp_path, capsys):
    assert dlpipe_main(["metrics", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dlpipe metrics: ") and str(tmp_path) in err
