"""Sharing through a DVC remote: push data, results and the run-cache; a fresh `git clone` then
`dvc pull` reproduces the workspace and `dvc repro` executes no stage; `dvc repro --pull` fetches
results instead of recomputing. Two remotes: the team default (a local directory, as committed in
.dvc/config) and S3, served by moto on 127.0.0.1."""
from __future__ import annotations

from pathlib import Path

import pytest

from dvc_helpers import commit_all, copy_built, dvc, git, golden, outs_digest, repro

pytestmark = [pytest.mark.slow, pytest.mark.long]

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
          "AWS_DEFAULT_REGION": "us-east-1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
BUCKET = "dlpipe-test"


@pytest.fixture(scope="module")
def source(tmp_path_factory, mirror) -> tuple[Path, tuple[str, ...]]:
    """A built tiny repo whose committed default remote points at a local directory, pushed there."""
    base = tmp_path_factory.mktemp("remote")
    g = golden(tmp_path_factory, mirror)
    repo = copy_built(g, base / "source")
    dvc(repo, "remote", "modify", "storage", "url", str(base / "storage"))   # project config, committed
    commit_all(repo, "team remote for the test")
    p = dvc(repo, "push", "--run-cache", *g.targets, timeout=600)
    out = p.stdout + p.stderr
    assert "pushed" in out or "Everything is up to date" in out, out
    return repo, g.targets  # targets: what built at tiny scale (empty = every stage)


def _clone(source: Path, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", str(source), dest.name)
    return dest


def test_default_remote_is_documented_and_relative(repo_root):
    from configobj import ConfigObj  # DVC's own config parser

    cfg = ConfigObj(str(repo_root / ".dvc" / "config"))
    assert cfg["core"]["remote"] == "storage"
    url = cfg['remote "storage"']["url"]
    assert not Path(url).is_absolute() and "://" not in url, f"team default remote should be a relative path: {url}"
    doc = (repo_root / "docs" / "SHARING.md").read_text()
    for needle in ("dvc push --run-cache", "dvc pull", "dvc repro --pull", "s3://", "gs://", "ssh://", "dvc queue start"):
        assert needle in doc, f"docs/SHARING.md does not explain `{needle}`"


def test_clone_pull_reproduces_workspace_and_repro_runs_nothing(source, tmp_path):
    src, targets = source
    clone = _clone(src, tmp_path / "clone")
    assert outs_digest(clone) == {}, "a fresh clone should hold no DVC outputs before pulling"
    dvc(clone, "pull", *targets)                                            # the committed default remote
    assert outs_digest(clone) == outs_digest(src)
    r = repro(clone, *targets)
    assert r.ran == [] and r.cached == [], r.output[-3000:]


def test_repro_pull_fetches_results_instead_of_recomputing(source, tmp_path):
    src, targets = source
    clone = _clone(src, tmp_path / "clone")
    r = repro(clone, "--pull", *targets)
    assert r.ran == [], f"stages recomputed instead of fetched: {r.ran}\n{r.output[-3000:]}"
    assert outs_digest(clone) == outs_digest(src)


@pytest.fixture
def s3_endpoint():
    """moto's S3 on a free port of 127.0.0.1 with one bucket; stopped on teardown."""
    boto3 = pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket=BUCKET)
        yield url, s3
    finally:
        server.stop()


def _add_s3(repo: Path, url: str, default: bool = False) -> None:
    dvc(repo, "remote", "add", "--local", *(["-d"] if default else []), "s3", f"s3://{BUCKET}/cache")
    dvc(repo, "remote", "modify", "--local", "s3", "endpointurl", url)


def test_s3_remote_push_clone_repro_pull(source, s3_endpoint, tmp_path):
    (src, targets), (url, s3) = source, s3_endpoint
    _add_s3(src, url)
    try:
        dvc(src, "push", "--run-cache", "-r", "s3", *targets, extra_env=S3_ENV, timeout=300)
    finally:
        dvc(src, "remote", "remove", "--local", "s3")
    keys = s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0)
    assert keys > 0, "nothing reached the S3 bucket"

    clone = _clone(src, tmp_path / "clone")
    _add_s3(clone, url, default=True)
    r = repro(clone, "--pull", *targets, extra_env=S3_ENV)
    assert r.ran == [], f"stages recomputed instead of fetched from S3: {r.ran}\n{r.output[-3000:]}"
    assert outs_digest(clone) == outs_digest(src)
    status = dvc(clone, "status", "--cloud", "--json", *targets, extra_env=S3_ENV).stdout
    assert status.strip() in ("{}", ""), f"clone and S3 remote differ: {status}"
