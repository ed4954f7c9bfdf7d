"""Real transfers against a loopback HTTP server, a mirror directory and file:// URLs (no mocks)."""
from __future__ import annotations

import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dlpipe.core.errors import DownloadError
from dlpipe.io.download import STAMP, dataset_status, fetch, fetch_dataset
from dlpipe.registry import Dataset, FileSpec

fault = partial(pytest.mark.fault, "Bad data")


# ---- a loopback server with a hit counter ----------------------------------------------------

class _Handler(SimpleHTTPRequestHandler):
    """Serves ``server.root``; ``/cut/<path>`` announces more bytes than it sends, ``/slow/<path>`` dribbles."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.server.hits.append(self.path)
        if self.path.startswith("/cut/"):
            body = (self.server.root / self.path[len("/cut/"):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) * 2))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        if self.path.startswith("/slow/"):
            body = (self.server.root / self.path[len("/slow/"):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 4096):
                self.wfile.write(body[i:i + 4096])
                self.wfile.flush()
                time.sleep(self.server.delay)
            return
        super().do_GET()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client hanging up mid-body is part of the tests
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@pytest.fixture
def server(tmp_path):
    """(base_url, root dir, hits list) of a threaded HTTP server on 127.0.0.1 with an OS-picked port."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = _Server(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    httpd.root, httpd.hits, httpd.delay = root, [], 0.05
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, httpd
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    """A URL on a port nothing listens on (bound, then closed), so connecting is refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


# ---- test data built here --------------------------------------------------------------------

def _tar_gz(members: dict[str, bytes], top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        d = tarfile.TarInfo(top)
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        for name, data in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_mirror(root: Path, name: str = "demo") -> dict[str, bytes]:
    """Write ``root/<name>/{data.tar.gz, pack.zip, notes/plain.txt}``; returns path -> bytes."""
    files = {
        "data.tar.gz": _tar_gz({"a.txt": b"alpha\n", "sub/b.txt": b"beta\n"}, top="demo-1.0"),
        "pack.zip": _zip({"z/c.txt": b"gamma\n"}),
        "notes/plain.txt": b"just a file\n" * 1000,
    }
    for rel, data in files.items():
        (root / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / name / rel).write_bytes(data)
    return files


def make_dataset(files: dict[str, bytes], url_base: str, name: str = "demo", **override) -> Dataset:
    """A Dataset whose public URLs are ``url_base/<name>/<path>``; ``override[path]`` replaces fields."""
    specs = []
    for rel, data in files.items():
        kw = dict(path=rel, url=f"{url_base}/{name}/{rel}", algo="sha256",
                  digest=hashlib.sha256(data).hexdigest(), bytes=len(data),
                  extract={"data.tar.gz": "tar", "pack.zip": "zip"}.get(rel), strip=1 if rel == "data.tar.gz" else 0)
        kw.update(override.get(rel, {}))
        specs.append(FileSpec(**kw))
    return Dataset(name=name, title="demo", scale="sample", license="MIT", citation="test", files=tuple(specs))


def assert_complete(out: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data
    assert (out / "a.txt").read_text() == "alpha\n"  # tar, top directory stripped
    assert (out / "sub" / "b.txt").read_text() == "beta\n"
    assert (out / "z" / "c.txt").read_text() == "gamma\n"  # zip
    assert not list(out.rglob(".tmp-*"))


# ---- tests -----------------------------------------------------------------------------------

def test_http_mirror_download_verify_extract(server, tmp_path):
    base, root, httpd = server
    files = make_mirror(root)
    ds = make_dataset(files, closed_port_url())  # public URLs dead: the mirror must serve everything
    out = tmp_path / "raw" / "demo"
    result = fetch(ds, out, mirror=base, progress=False)
    assert_complete(out, files)
    assert result["downloaded"] == 3 and result["reused"] == 0 and result["extracted"] == 2
    assert sorted(httpd.hits) == ["/demo/data.tar.gz", "/demo/notes/plain.txt", "/demo/pack.zip"]
    assert oct((out / "notes" / "plain.txt").stat().st_mode & 0o777) == "0o644"


def test_second_run_makes_no_request(server, tmp_path):
    base, root, httpd = server
    ds = make_dataset(make_mirror(root), base)
    out = tmp_path / "demo"
    fetch(ds, out, progress=False)
    n = len(httpd.hits)
    result = fetch(ds, out, progress=False)
    assert len(httpd.hits) == n
    assert result["downloaded"] == 0 and result["reused"] == 3 and result["extracted"] == 0


def test_changed_file_is_reverified_and_fetched_again(server, tmp_path):
    base, root, httpd = server
    files = make_mirror(root)
    ds = make_dataset(files, base)
    out = tmp_path / "demo"
    fetch(ds, out, progress=False)
    (out / "notes" / "plain.txt").write_bytes(b"edited by hand\n")
    (out / "a.txt").unlink()  # an extracted member gone: the archive is extracted again
    n = len(httpd.hits)
    result = fetch(ds, out, progress=False)
    assert httpd.hits[n:] == ["/demo/notes/plain.txt"]
    assert result["downloaded"] == 1
    assert_complete(out, files)


def test_touched_but_identical_file_is_rehashed_not_fetched(server, tmp_path):
    base, root, httpd = server
    ds = make_dataset(make_mirror(root), base)
    out = tmp_path / "demo"
    fetch(ds, out, progress=False)
    os.utime(out / "pack.zip", (1, 1))  # stamp no longer matches: must re-hash, finds it intact
    n = len(httpd.hits)
    assert fetch(ds, out, progress=False)["downloaded"] == 0
    assert len(httpd.hits) == n


@fault("sha256 mismatch: DownloadError naming dataset, file, URL and both digests; nothing written")
def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    base, root, _ = server
    files = make_mirror(root)
    ds = make_dataset({"notes/plain.txt": files["notes/plain.txt"]}, base, **{"notes/plain.txt": {"digest": "0" * 64}})
    out = tmp_path / "raw" / "demo"
    with pytest.raises(DownloadError) as e:
        fetch(ds, out, progress=False)
    msg = str(e.value)
    assert "'demo'" in msg and "notes/plain.txt" in msg and f"{base}/demo/notes/plain.txt" in msg
    assert "checksum mismatch: expected sha256 " + "0" * 64 in msg
    assert hashlib.sha256(files["notes/plain.txt"]).hexdigest() in msg
    assert not out.exists() and list((tmp_path / "raw").iterdir()) == []


@fault("connection cut mid-transfer: 'connection closed after N of M bytes'; nothing promoted")
def test_truncated_transfer_promotes_nothing(server, tmp_path):
    base, root, _ = server
    files = make_mirror(root)
    ds = make_dataset(files, f"{base}/cut")
    out = tmp_path / "demo"
    with pytest.raises(DownloadError, match=r"connection closed after \d+ of \d+ bytes"):
        fetch(ds, out, progress=False)
    assert not out.exists()


@pytest.mark.fault("Faults", "HTTP 404: one message naming dataset, URL, 'HTTP 404' and how to set DLPIPE_MIRROR")
def test_404_gives_clear_message(server, tmp_path):
    base, root, _ = server
    ds = make_dataset({"missing.bin": b"x"}, base)
    with pytest.raises(DownloadError) as e:
        fetch(ds, tmp_path / "demo", mirror=f"{base}/nomirror", progress=False)
    msg = str(e.value)
    assert "could not download dataset 'demo', file 'missing.bin'" in msg
    assert f"{base}/nomirror/demo/missing.bin" in msg and f"{base}/demo/missing.bin" in msg
    assert msg.count("HTTP 404") == 2 and "export DLPIPE_MIRROR=" in msg


@pytest.mark.fault("Faults", "connection refused (offline): message names the URL, the reason and the mirror fix")
def test_connection_refused_gives_clear_message(tmp_path):
    url = closed_port_url()
    ds = make_dataset({"f.bin": b"x"}, url)
    with pytest.raises(DownloadError) as e:
        fetch(ds, tmp_path / "demo", progress=False)
    assert f"{url}/demo/f.bin" in str(e.value) and "connection refused" in str(e.value)
    assert "DLPIPE_MIRROR" in str(e.value)


@pytest.mark.fault("Faults", "server stalls: socket timeout, reported as 'timed out'")
def test_stalled_server_times_out(server, tmp_path):
    base, root, httpd = server
    (root / "demo").mkdir()
    (root / "demo" / "big.bin").write_bytes(b"y" * 12_000)
    httpd.delay = 1.0
    ds = make_dataset({"big.bin": b"y" * 12_000}, f"{base}/slow")
    with pytest.raises(DownloadError, match="timed out"):
        fetch(ds, tmp_path / "demo", timeout=0.3, progress=False)


def test_mirror_directory_needs_no_server(tmp_path):
    mirror = tmp_path / "mirror"
    files = make_mirror(mirror)
    out = tmp_path / "demo"
    fetch(make_dataset(files, closed_port_url()), out, mirror=str(mirror), progress=False)
    assert_complete(out, files)


def test_public_url_used_when_mirror_lacks_the_file(server, tmp_path):
    base, root, _ = server
    files = make_mirror(root)
    empty_mirror = tmp_path / "empty"
    empty_mirror.mkdir()
    out = tmp_path / "demo"
    fetch(make_dataset(files, base), out, mirror=str(empty_mirror), progress=False)
    assert_complete(out, files)


def test_file_url(tmp_path):
    src = tmp_path / "pub"
    files = make_mirror(src)
    out = tmp_path / "demo"
    fetch(make_dataset(files, src.as_uri()), out, mirror="", progress=False)
    assert_complete(out, files)


@pytest.mark.fault("Faults", "leftover .tmp-* files and dirs from a killed download: removed by the next run")
def test_leftover_tmp_files_are_cleaned(tmp_path):
    src = tmp_path / "pub"
    files = make_mirror(src)
    out = tmp_path / "demo"
    (out / "notes").mkdir(parents=True)
    (out / ".tmp-data.tar.gz.abc123").write_bytes(b"partial")
    (out / "notes" / ".tmp-plain.txt.xyz").write_bytes(b"partial")
    (out / ".tmp-extract.q1w2e3").mkdir()
    fetch(make_dataset(files, src.as_uri()), out, progress=False)
    assert_complete(out, files)


@pytest.mark.fault("Faults", "download SIGKILLed mid-body (stalling loopback server): only a .tmp-* file left; the rerun restarts and completes")
def test_killed_download_leaves_only_tmp_and_restarts_cleanly(server, tmp_path):
    base, root, httpd = server
    data = os.urandom(400_000)
    (root / "demo").mkdir()
    (root / "demo" / "big.bin").write_bytes(data)
    httpd.delay = 0.02  # ~100 chunks of 4 KiB: about 2 s, plenty of time to kill it mid-way
    out = tmp_path / "demo"
    code = textwrap.dedent(f"""
        from pathlib import Path
        from dlpipe.io.download import fetch
        from dlpipe.registry import Dataset, FileSpec
        f = FileSpec("big.bin", "{base}/slow/demo/big.bin", "sha256", "{hashlib.sha256(data).hexdigest()}", {len(data)})
        fetch(Dataset("demo", "demo", "sample", "MIT", "test", (f,)), Path(r"{out}"), progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(p.stat().st_size > 20_000 for p in out.glob(".tmp-*")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = sorted(p.name for p in out.iterdir())
    assert len(left) == 1 and left[0].startswith(".tmp-big.bin."), left
    httpd.delay = 0.0
    spec = FileSpec("big.bin", f"{base}/demo/big.bin", "sha256", hashlib.sha256(data).hexdigest(), len(data))
    fetch(Dataset("demo", "demo", "sample", "MIT", "test", (spec,)), out, progress=False)
    assert (out / "big.bin").read_bytes() == data
    assert sorted(p.name for p in out.iterdir()) == [STAMP, "big.bin"]


def test_real_imdb_sample_from_mirror(mirror, tmp_path):
    result = fetch_dataset("imdb_sample", dest_root=tmp_path, mirror=str(mirror), progress=False)
    out = tmp_path / "imdb_sample"
    assert result["downloaded"] == 1 and result["extracted"] == 1
    assert (out / "classes.txt").read_text().split() == ["negative", "positive"]
    assert (out / "train.csv").stat().st_size == 1119660 and (out / "valid.csv").stat().st_size == 294528
    assert dataset_status("imdb_sample", tmp_path) == "verified"
    assert dataset_status("imdb_sample", tmp_path, rehash=True) == "verified"
    (out / "valid.csv").unlink()
    assert dataset_status("imdb_sample", tmp_path) == "partial"
    assert fetch_dataset("imdb_sample", dest_root=tmp_path, mirror="", progress=False)["extracted"] == 1  # no network
    assert (out / "valid.csv").stat().st_size == 294528


def test_env_mirror_is_read_at_call_time(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("DLPIPE_MIRROR", str(mirror))
    fetch_dataset("mnist", dest_root=tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "mnist").glob("*.gz")) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"]  # kept gzipped


def test_dataset_status_states(mirror, tmp_path):
    assert dataset_status("wikitext-2", tmp_path) == "missing"
    fetch_dataset("wikitext-2", dest_root=tmp_path, mirror=str(mirror), progress=False)
    assert dataset_status("wikitext-2", tmp_path) == "verified"
    (tmp_path / "wikitext-2" / "wiki.test.tokens").unlink()
    assert dataset_status("wikitext-2", tmp_path) == "partial"
    (tmp_path / "wikitext-2" / "wiki.valid.tokens").write_text("changed")
    assert dataset_status("wikitext-2", tmp_path) == "changed"


@pytest.mark.slow
def test_dvc_repro_download_is_cached(tiny_repo, mirror):
    env = {**os.environ, "DLPIPE_MIRROR": str(mirror)}
    dvc = [sys.executable, "-m", "dvc"]
    run = partial(subprocess.run, cwd=tiny_repo, env=env, capture_output=True, text=True, timeout=300)
    first = run([*dvc, "repro", "download@imdb_sample"])
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tiny_repo / "data/raw/imdb_sample/train.csv").is_file()
    second = run([*dvc, "repro", "download@imdb_sample"])
    assert second.returncode == 0 and "didn't change, skipping" in second.stdout, second.stdout
    status = run([*dvc, "status", "download@imdb_sample"])
    assert "up to date" in status.stdout, status.stdout


@pytest.mark.fault("Params", "stage given an unknown dataset: exit 1 with one line listing known names")
def test_stage_script_unknown_dataset(repo_root, tmp_path):
    res = subprocess.run([sys.executable, str(repo_root / "stages" / "download.py"), "imbd", str(tmp_path / "imbd")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.startswith("download: UnknownDataset: unknown dataset 'imbd' (known datasets: ")
    assert not (tmp_path / "imbd").exists()


def test_stage_script_writes_into_declared_out_dir(repo_root, mirror, tmp_path):
    out = tmp_path / "somewhere" / "else"
    res = subprocess.run([sys.executable, str(repo_root / "stages" / "download.py"), "tinyshakespeare", str(out)],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "DLPIPE_MIRROR": str(mirror)})
    assert res.returncode == 0, res.stderr
    assert '"downloaded": 1' in res.stdout and (out / "input.txt").stat().st_size == 1115394
