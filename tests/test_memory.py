"""Guardrails on resources: disk space is checked before features are written; tokenize memory is bounded.

Tokenize streams its CSV in chunks of ``chunk_size`` documents through ``n_workers`` processes and
appends each chunk to disk, so its peak memory must not grow with the corpus: a corpus 10x the IMDb
sample peaks within 1.2x of the sample's peak (RSS of the stage and its workers, summed, polled).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest

from dlpipe.core.errors import DataError
from dlpipe.io.arrays import check_free_space
from stage_runs import extract_imdb, stage_cmd, stage_env, tiny_params

psutil = pytest.importorskip("psutil")   # installed with dvc


@pytest.mark.fault("Guardrails", "precompute's free-space check with an absurd need (4 EiB): DataError giving the "
                   "MiB needed and free and the filesystem probed, before anything is created")
def test_free_space_check_refuses_before_writing(tmp_path):
    out = tmp_path / "features" / "mnist_sample" / "train"
    need = 2**62
    with pytest.raises(DataError) as e:
        check_free_space(out, need, what="features (2**62 bytes)")
    msg = str(e.value)
    m = re.fullmatch(rf"{out}: not enough disk space for features \(2\*\*62 bytes\): need ([\d,.]+) MiB, "
                     rf"([\d,.]+) MiB free on the filesystem of {tmp_path}", msg)
    assert m, msg
    assert float(m[1].replace(",", "")) == need / 2**20
    free = shutil.disk_usage(tmp_path).free / 2**20
    assert abs(float(m[2].replace(",", "")) - free) < 0.05 * free + 64      # the real number, not a placeholder
    assert list(tmp_path.iterdir()) == []                                      # nothing created
    check_free_space(out, 1024, what="features")                               # a sane need passes


def _peak_rss(cmd: list[str]) -> tuple[int, int, float]:
    """Run ``cmd``; (peak summed RSS of it and its descendants in bytes, most processes seen, seconds)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=stage_env())
    root = psutil.Process(proc.pid)
    peak = most = 0
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in procs)
        except psutil.NoSuchProcess:       # a worker exiting between listing and reading: next sample
            continue
        peak, most = max(peak, rss), max(most, len(procs))
        time.sleep(0.05)
    assert proc.returncode == 0, proc.stderr.read()[-3000:]
    return peak, most, time.monotonic() - t0


@pytest.mark.slow
@pytest.mark.fault("Guardrails", "tokenize (2 workers, 250-doc chunks) on 10x the IMDb sample (10,000 reviews): "
                   "peak RSS of stage + workers within 1.2x of the 1x run")
def test_tokenize_memory_bounded_by_chunk_size(mirror, tmp_path):
    raw = extract_imdb(mirror, tmp_path)
    one = (raw / "train.csv").read_bytes() + (raw / "valid.csv").read_bytes()     # the 1,000-review sample
    (tmp_path / "x1.csv").write_bytes(one)
    (tmp_path / "x10.csv").write_bytes(one * 10)
    params = tiny_params(tmp_path / "p", imdb__tokenize__n_workers=2, imdb__tokenize__chunk_size=250)
    runs = {n: _peak_rss(stage_cmd("tokenize_text", "--params", params, tmp_path / f"x{n}.csv", tmp_path / f"tok{n}"))
            for n in (1, 10)}
    (p1, n1, s1), (p10, n10, s10) = runs[1], runs[10]
    print(f"tokenize peak RSS: 1x {p1 / 2**20:.0f} MiB ({s1:.0f} s), 10x {p10 / 2**20:.0f} MiB ({s10:.0f} s), "
          f"ratio {p10 / p1:.3f}")
    assert n1 >= 3 and n10 >= 3                     # the stage and its 2 workers were all measured
    assert (tmp_path / "tok10" / "tokens.bin").stat().st_size > 9 * (tmp_path / "tok1" / "tokens.bin").stat().st_size
    assert p10 <= 1.2 * p1, f"peak RSS grew with the corpus: {p1 / 2**20:.0f} -> {p10 / 2**20:.0f} MiB"
