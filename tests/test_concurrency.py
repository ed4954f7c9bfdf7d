"""Two `dvc repro` at once, and a `dvc repro` killed with SIGKILL, in a tiny temporary repo.

The repro is the cheapest real stage, ``download@imdb_sample``, fed by a loopback HTTP mirror that
dribbles the tarball (4 KiB per ``DELAY`` seconds), so the first run holds DVC's repo lock long
enough for the second to collide with it.

What DVC does (dvc 3.67, checked by these tests, not assumed):
- The repo lock ``.dvc/tmp/lock`` (a ``zc.lockfile``: an ``fcntl`` lock on an open file) is held only
  while DVC reads and writes its own state; DVC releases it while a stage command runs. What guards a
  running stage is ``.dvc/tmp/rwlock``, a JSON file naming, per dep/out path, the PID and command
  using it. A second `dvc repro` of the same stage therefore does not fail with "Unable to acquire
  lock" but with "'<out path>' is busy, it is being blocked by: (PID n): ... repro ...", exit 255,
  before running anything.
- After a SIGKILL the fcntl lock dies with its holder (the lock file stays, harmless), and the rwlock
  still names the dead PID; the next run sees the PID is gone, warns "had been killed. Auto removed
  it from the lock file" and proceeds. No `rm .dvc/tmp/rwlock`, `rm .dvc/tmp/lock` or `dvc unlock`
  is needed (the manual removal DVC's message suggests is only for a PID reused by another process).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dvc_helpers import dvc, env

STAGE = "download@imdb_sample"
OUT = Path("data/raw/imdb_sample")
DELAY = 0.05     # s per 4 KiB: the 570 KB tarball takes ~7 s


class _Slow(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return super().do_GET()
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(0, len(body), 4096):
                self.wfile.write(body[i:i + 4096])
                self.wfile.flush()
                time.sleep(DELAY)
        except (BrokenPipeError, ConnectionResetError):   # the client was killed: part of the test
            pass


@pytest.fixture
def slow_mirror(mirror):
    """Base URL of a loopback HTTP server serving the data mirror slowly."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Slow, directory=str(mirror)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _start_repro(repo: Path, mirror_url: str) -> subprocess.Popen:
    # Own session: the SIGKILL test kills dvc and its stage child together, leaving no orphan.
    return subprocess.Popen([sys.executable, "-m", "dvc", "repro", STAGE], cwd=repo,
                            env=env({"DLPIPE_MIRROR": mirror_url}), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for_stage_running(repo: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Block until the stage command is mid-download (a .tmp-* file of the tarball is growing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dvc repro ended early:\n{proc.stdout.read()}")
        if any(p.stat().st_size > 8192 for p in (repo / OUT).glob(".tmp-*") if p.is_file()):
            return
        time.sleep(0.05)
    raise AssertionError("the download stage never started")


def _assert_complete_and_clean(repo: Path) -> None:
    status = dvc(repo, "status", STAGE)
    assert "up to date" in status.stdout, status.stdout
    out = repo / OUT
    assert {"train.csv", "valid.csv", "classes.txt"} <= {p.name for p in out.iterdir()}
    assert not list(out.rglob(".tmp-*"))


@pytest.mark.slow
@pytest.mark.fault("Concurrency", "second `dvc repro` of a running stage: refused by DVC's rwlock ('<out> is busy, "
                   "blocked by (PID n)'), exit 255, runs nothing; the first finishes and `dvc status` is clean")
def test_second_repro_is_refused_by_the_lock(tiny_repo, slow_mirror):
    first = _start_repro(tiny_repo, slow_mirror)
    try:
        _wait_for_stage_running(tiny_repo, first)
        second = dvc(tiny_repo, "repro", STAGE, check=False, timeout=120,
                     extra_env={"DLPIPE_MIRROR": slow_mirror})
        still_running = first.poll() is None
        log, _ = first.communicate(timeout=180)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert still_running, "the first repro finished before the second one tried: nothing was tested"
    said = second.stdout + second.stderr
    assert second.returncode == 255, said
    blocked = rf"data/raw/imdb_sample' is busy, it is being blocked by:\s+\(PID {first.pid}\): .*repro"
    assert re.search(blocked, said), said
    assert "Running stage" not in second.stdout
    assert first.returncode == 0, log
    _assert_complete_and_clean(tiny_repo)


@pytest.mark.slow
@pytest.mark.fault("Concurrency", "`dvc repro` (and its stage) SIGKILLed mid-stage: the kernel frees DVC's lock, "
                   "the stale rwlock PID is auto-removed, the next `dvc repro` reruns the stage to a clean status")
def test_repro_after_sigkill_needs_no_unlock(tiny_repo, slow_mirror, mirror):
    first = _start_repro(tiny_repo, slow_mirror)
    _wait_for_stage_running(tiny_repo, first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    tmp = tiny_repo / ".dvc" / "tmp"
    assert (tmp / "lock").exists()                      # the file stays; the fcntl lock died with its holder
    assert f'"pid": {first.pid}' in (tmp / "rwlock").read_text()   # stale entry naming the dead dvc
    assert not (tiny_repo / OUT / "train.csv").exists()          # nothing half-written under a final name
    status = dvc(tiny_repo, "status", STAGE)
    assert "changed outs" in status.stdout or "deleted" in status.stdout, status.stdout

    again = dvc(tiny_repo, "repro", STAGE, timeout=300, extra_env={"DLPIPE_MIRROR": str(mirror)})
    assert "Running stage 'download@imdb_sample'" in again.stdout, again.stdout
    assert "had been killed. Auto removed it from the lock file" in again.stdout + again.stderr
    _assert_complete_and_clean(tiny_repo)
