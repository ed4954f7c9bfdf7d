"""The bench helpers: statistics, number/table formatting, target checks, worker subprocesses."""
from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` lives at the repo root, not in src/

from bench.common import (BenchError, fmt_stat, human, md_table, ratio, render_result, run_worker,  # noqa: E402
                          summarize, target, tree_mem)
from bench.lm_train import lm_flops_per_token  # noqa: E402


@pytest.mark.parametrize("values, median, lo, hi", [
    ([3.0], 3.0, 3.0, 3.0),
    ([5, 1, 3], 3.0, 1.0, 5.0),
    ([4, 1, 3, 2], 2.5, 1.0, 4.0),        # even count: mean of the middle two
    ([2, 2, 9], 2.0, 2.0, 9.0),
])
def test_summarize_median_min_max(values, median, lo, hi):
    s = summarize(values)
    assert (s["median"], s["min"], s["max"], s["n"]) == (median, lo, hi, len(values))
    assert s["runs"] == [float(v) for v in values]


def test_summarize_refuses_no_runs():
    with pytest.raises(ValueError, match="no measurements"):
        summarize([])


@pytest.mark.parametrize("a, b, want", [
    ({"median": 6.0}, {"median": 2.0}, 3.0),
    (6.0, 3.0, 2.0),
    (None, 2.0, None),
    (1.0, 0.0, None),                      # a zero peer gives no ratio, not a crash
])
def test_ratio_of_medians(a, b, want):
    assert ratio(a, b) == want


@pytest.mark.parametrize("x, text", [
    (51234, "51.2k"), (1_234_567, "1.23M"), (2.5e9, "2.5G"), (0.0123, "0.0123"), (999, "999"), (None, "–"),
])
def test_human_numbers(x, text):
    assert human(x) == text


def test_fmt_stat_shows_range_only_for_several_runs():
    assert fmt_stat(summarize([51234])) == "51.2k"
    assert fmt_stat(summarize([50000, 51234, 52000])) == "51.2k (50k–52k)"
    assert fmt_stat(summarize([1.0, 2.0, 3.0]), lambda v: f"{v:.1f} s") == "2.0 s (1.0 s–3.0 s)"


def test_md_table_layout_and_escaping():
    text = md_table(["a", "b"], [[1, "x|y"], ["z", 2.5]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |", "| z | 2.5 |"]


def test_md_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match="row has 1 cells, expected 2"):
        md_table(["a", "b"], [[1]])


@pytest.mark.parametrize("value, op, thr, met", [
    (3.2, ">=", 3.0, True), (2.9, ">=", 3.0, False), (1.1, "<=", 1.2, True), (1.3, "<=", 1.2, False),
    (None, ">=", 1.0, None),
])
def test_target_checks(value, op, thr, met):
    assert target("t", value, op, thr)["met"] is met


def test_target_rejects_unknown_op():
    with pytest.raises(ValueError, match="op must be"):
        target("t", 1.0, "==", 1.0)


def test_render_result_has_notes_table_and_target_status():
    res = {"title": "X", "notes": ["a note"],
           "tables": [{"caption": "cap", "headers": ["h1", "h2"], "rows": [["r", "1"]]}],
           "targets": [target("speed", 3.5, ">=", 3.0), target("mem", 1.5, "<=", 1.2)]}
    text = render_result(res)
    assert text.startswith("## X\n")
    assert "- a note" in text and "**cap**" in text and "| r | 1 |" in text
    assert "| speed | 3.5 | >= 3 | ✅ met |" in text
    assert "| mem | 1.5 | <= 1.2 | ❌ not met |" in text


def test_tree_mem_counts_this_process():
    me = psutil.Process()
    assert tree_mem(me) >= me.memory_info().rss > 0
    assert tree_mem(me, pss=True) > 0


def test_run_worker_returns_json_and_peak_rss(tmp_path):
    code = "import json, time; x = bytearray(50 * 2**20); time.sleep(0.3); print('noise'); print(json.dumps({'v': 7}))"
    res = run_worker([sys.executable, "-c", code], tmp_path / "w.log")
    assert res["v"] == 7
    assert res["peak_rss"] > 50 * 2**20     # the 50 MiB buffer was seen by the poller
    assert res["wall_s"] >= 0.3


def test_run_worker_failure_quotes_the_log(tmp_path):
    code = "import sys; sys.stderr.write('boom: bad input\\n'); sys.exit(3)"
    with pytest.raises(BenchError, match=r"exited 3 without a result(.|\n)*boom: bad input"):
        run_worker([sys.executable, "-c", code], tmp_path / "w.log")


def test_lm_flops_per_token_matches_hand_count():
    # emb 2, hid 3, 2 layers, vocab 5: LSTM 4*3*(2+3) + 4*2*(3+2) = 100 MACs, decoder 2*5 = 10
    assert lm_flops_per_token(5, 2, 3, 2) == 3 * 2 * 110
