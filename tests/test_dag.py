"""dvc.yaml honesty: each stage's deps cover the code it imports (transitively) and the package
data it reads; its params cover what it loads. Fast: static analysis only (the params half of the
check needs a traced run and lives in test_dag_integration.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dlpipe import dagcheck
from dlpipe.core import params
from dlpipe.dagcheck import StageInfo

# ---------------------------------------------------------------- the real repository


def test_repo_stage_deps_are_complete_and_narrow(repo_root):
    problems = dagcheck.check(repo_root)
    assert problems == [], "dvc.yaml deps are out of step with the code:\n" + "\n".join(problems)


def test_repo_has_stages_with_scripts(repo_root):
    stages = dagcheck.load_stages(repo_root)
    assert stages, "dvc.yaml defines no stages"
    for st in stages:
        scripts = [e for c in st.cmds for e in dagcheck.entry_points(c, repo_root)]
        assert scripts and all(s.is_file() for s in scripts), f"{st.name}: cmd runs no script in the repo"


@pytest.mark.parametrize("module,files", sorted(dagcheck.DATA_FILES.items()))
def test_data_file_map_names_files_the_module_mentions(repo_root, module, files):
    src = dagcheck.module_file(module, repo_root)
    assert src is not None, f"DATA_FILES names module {module}, which does not exist"
    text = src.read_text(encoding="utf-8")
    for f in files:
        assert (repo_root / f).is_file(), f"DATA_FILES: {f} does not exist"
        assert Path(f).name in text, f"{module} never mentions {Path(f).name}: is the map stale?"


# ---------------------------------------------------------------- a synthetic package


@dataclass
class FakeRepo:
    root: Path
    files: dict = field(default_factory=dict)

    def write(self, rel: str, text: str = "") -> "FakeRepo":
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        return self

    def stage(self, cmd: str, deps=(), params_=None) -> StageInfo:
        return StageInfo("s", (cmd,), tuple(deps), params_ or {}, None)


@pytest.fixture
def fake(tmp_path) -> FakeRepo:
    r = FakeRepo(tmp_path)
    r.write("src/dlpipe/__init__.py")
    r.write("src/dlpipe/core/params.py", "import yaml\n")
    r.write("src/dlpipe/core/errors.py")
    r.write("src/dlpipe/registry.py", "from dlpipe.core.errors import DataError\nNAME = 'datasets.yaml'\n")
    r.write("src/dlpipe/datasets.yaml", "datasets: {}\n")
    r.write("src/dlpipe/text/__init__.py", "CONST = 1\n")
    r.write("src/dlpipe/text/rules.py", "from ..core import params\n")
    r.write("src/dlpipe/text/vocab.py", "from . import rules\n")
    r.write("src/dlpipe/text/tokenize.py", "def f():\n    from dlpipe.text.vocab import Vocab  # lazy\n")
    r.write("src/dlpipe/models/darknet.py", "import torch\n")          # namespace package: no __init__
    r.write("src/dlpipe/models/awd_lstm.py", "from .darknet import x\n")
    r.write("src/dlpipe/tasks/imdb.py", "import importlib\nm = importlib.import_module('dlpipe.registry')\n")
    r.write("stages/_common.py", "import dlpipe.core.errors\n")
    return r


def _need(fake: FakeRepo, script_body: str, cmd: str = "python stages/x.py a b") -> set[str]:
    fake.write("stages/x.py", script_body)
    return dagcheck.required_files(fake.stage(cmd), fake.root)


PKG_INIT = "src/dlpipe/__init__.py"


@pytest.mark.parametrize("body,expected", [
    ("from dlpipe.text import rules\n",
     {"src/dlpipe/text/__init__.py", "src/dlpipe/text/rules.py", "src/dlpipe/core/params.py"}),
    ("from dlpipe.text import CONST\n", {"src/dlpipe/text/__init__.py"}),        # attribute, not a module
    ("import dlpipe.models.darknet as dn\n", {"src/dlpipe/models/darknet.py"}),
    ("from dlpipe.models.awd_lstm import AWD\n",                                  # relative, transitive
     {"src/dlpipe/models/awd_lstm.py", "src/dlpipe/models/darknet.py"}),
    ("from dlpipe.text.vocab import V\n",
     {"src/dlpipe/text/__init__.py", "src/dlpipe/text/vocab.py", "src/dlpipe/text/rules.py",
      "src/dlpipe/core/params.py"}),
    ("from dlpipe.text.tokenize import f\n",                                      # import inside a function
     {"src/dlpipe/text/__init__.py", "src/dlpipe/text/tokenize.py", "src/dlpipe/text/vocab.py",
      "src/dlpipe/text/rules.py", "src/dlpipe/core/params.py"}),
    ("from dlpipe.tasks.imdb import run\n",                                       # importlib + package data
     {"src/dlpipe/tasks/imdb.py", "src/dlpipe/registry.py", "src/dlpipe/core/errors.py", "src/dlpipe/datasets.yaml"}),
    ("import _common\n", {"stages/_common.py", "src/dlpipe/core/errors.py"}),          # sibling helper script
    ("import numpy, torch\nfrom collections import Counter\n", set()),
])
def test_required_files_follow_imports_transitively(fake, body, expected):
    need = _need(fake, body)
    assert need - {"stages/x.py", PKG_INIT} == expected
    assert "stages/x.py" in need
    assert (PKG_INIT in need) == bool(expected - {"stages/_common.py"}), "package __init__ runs on any dlpipe import"


@pytest.mark.parametrize("cmd,entry", [
    ("python stages/x.py a", "stages/x.py"),
    ("python3 -u stages/x.py --params params.yaml a", "stages/x.py"),
    ("python -m dlpipe.text.tokenize a", "src/dlpipe/text/tokenize.py"),
    ("python -m torch.distributed.run --standalone --nproc_per_node=2 stages/x.py a", "stages/x.py"),
    ("mkdir -p out && python stages/x.py a", "stages/x.py"),
    ("dlpipe download imdb", "src/dlpipe/cli.py"),
])
def test_entry_points_found_in_cmd(fake, cmd, entry):
    fake.write("stages/x.py").write("src/dlpipe/cli.py")
    assert [dagcheck._rel(p, fake.root.resolve()) for p in dagcheck.entry_points(cmd, fake.root)] == [entry]


def test_check_deps_flags_missing_broad_and_unused(fake):
    fake.write("stages/x.py", "from dlpipe.text import rules\n")
    ok = ["stages/x.py", PKG_INIT, "src/dlpipe/text", "src/dlpipe/core/params.py"]   # a dir dep covers rules.py
    assert dagcheck.check_deps(fake.stage("python stages/x.py", ok), fake.root) == []

    missing = dagcheck.check_deps(fake.stage("python stages/x.py", ok[:-1]), fake.root)
    assert missing == ["s: runs or reads 'src/dlpipe/core/params.py' but it is not in deps"]

    broad = dagcheck.check_deps(fake.stage("python stages/x.py", ["stages/x.py", "src/dlpipe"]), fake.root)
    assert broad == ["s: depends on all of 'src/dlpipe' (list the modules it imports instead)"]

    unused = dagcheck.check_deps(fake.stage("python stages/x.py", ok + ["src/dlpipe/models/darknet.py"]), fake.root)
    assert unused == ["s: depends on 'src/dlpipe/models/darknet.py' but never imports or reads it (spurious reruns)"]


def test_check_deps_without_a_script_says_so(fake):
    assert "cannot find the Python script" in dagcheck.check_deps(fake.stage("echo hi"), fake.root)[0]


def test_unmapped_package_data_is_reported(fake):
    assert dagcheck.unmapped_package_data(fake.root) == []
    fake.write("src/dlpipe/text/stopwords.txt", "the\n")
    assert dagcheck.unmapped_package_data(fake.root) == [
        "package data 'src/dlpipe/text/stopwords.txt' is not in dagcheck.DATA_FILES (which module reads it?)"]


# ---------------------------------------------------------------- params honesty


@pytest.mark.parametrize("declared,reads,expected", [
    (["imdb.tokenize", "runtime"], {"imdb.tokenize", "runtime"}, []),
    (["imdb.tokenize"], {"imdb.tokenize", "runtime"},
     ["s: reads params.yaml:runtime but does not declare it in params"]),
    (["imdb.tokenize", "scale"], {"imdb.tokenize"},
     ["s: declares params.yaml:scale in params but never reads it"]),
    (["imdb"], {"imdb.tokenize"},                           # too broad: any imdb edit would rerun it
     ["s: reads params.yaml:imdb.tokenize but does not declare it in params",
      "s: declares params.yaml:imdb in params but never reads it"]),
    (["scale"], {"scale"}, []),                             # a single key, not a section
])
def test_check_params(declared, reads, expected):
    st = StageInfo("s", ("python stages/x.py",), (), {"params.yaml": tuple(declared)}, None)
    assert dagcheck.check_params(st, {("params.yaml", r) for r in reads}) == expected


@dataclass(frozen=True)
class _Section:
    lr: float


def test_params_load_traces_the_dvc_stage(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text("a:\n  b:\n    lr: 0.1\n")
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("DLPIPE_PARAMS_TRACE", str(trace))
    monkeypatch.setenv("DVC_STAGE", "train@x")
    params.load(_Section, "a.b", tmp_path / "params.yaml")
    rec = json.loads(trace.read_text().splitlines()[0])
    assert rec["stage"] == "train@x" and rec["section"] == "a.b"
    assert dagcheck.read_trace(trace) == {"train@x": {("params.yaml", "a.b")}}


def test_read_trace_names_a_bad_line(tmp_path):
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"params": "params.yaml", "section": "x", "stage": "s"}\nnot json\n')
    with pytest.raises(ValueError, match=r"t.jsonl:2: not a JSON line"):
        dagcheck.read_trace(bad)


# ---------------------------------------------------------------- dlpipe status on a small DVC repo

MINI_DVC_YAML = """
stages:
  prep:
    meta: {task: t}
    cmd: python -c "open('a.txt', 'w').write('a')"
    outs: [a.txt]
  train:
    meta: {task: t}
    cmd: python -c "import yaml; p = yaml.safe_load(open('params.yaml')); open('m.txt', 'w').write(str(p))"
    deps: [a.txt]
    params: [t.train]
    outs: [m.txt]
  evaluate:
    meta: {task: t}
    cmd: python -c "open('e.txt', 'w').write(open('m.txt').read())"
    deps: [m.txt]
    outs: [e.txt]
"""


@pytest.fixture
def mini_repo(tmp_path):
    from dvc_helpers import commit_all, dvc, git

    (tmp_path / "params.yaml").write_text("t:\n  train:\n    lr: 0.1\n    bs: 2\n")
    (tmp_path / "dvc.yaml").write_text(MINI_DVC_YAML)
    git(tmp_path, "init", "-q", "-b", "main")
    dvc(tmp_path, "init", "-q")
    dvc(tmp_path, "repro")
    commit_all(tmp_path, "built")
    return tmp_path


@pytest.mark.slow  # a real `dvc repro` of three trivial stages: seconds, more on a loaded machine
def test_status_names_changed_param_keys_and_upstream(mini_repo):
    from dlpipe import status

    before = {r.stage: r.state for r in status.collect(mini_repo)}
    assert before == {"prep": "up to date", "train": "up to date", "evaluate": "up to date"}
    text = (mini_repo / "params.yaml").read_text().replace("lr: 0.1", "lr: 0.2")
    (mini_repo / "params.yaml").write_text(text)
    rows = {r.stage: r for r in status.collect(mini_repo)}
    assert rows["prep"].state == "up to date"
    assert rows["train"].state == "changed" and rows["train"].reasons == ("params changed: t.train.lr",)
    assert rows["evaluate"].state == "upstream" and rows["evaluate"].reasons == ("upstream changed: train",)
    table = status.render(list(rows.values()))
    assert "task t" in table and "params changed: t.train.lr" in table
    assert table.splitlines()[-1].startswith("1 up to date, 2 to run")


def test_backbone_source_is_a_param(tmp_path, repo_root):
    """vision.precompute.<dataset>.backbone picks the file precompute reads and DVC tracks (cifar by default);
    switching afhq to the MNIST backbone moves precompute@afhq's dependency and leaves mnist_sample's alone."""
    import shutil
    import subprocess

    import yaml

    def precompute_deps(root):
        by = {s.name: s for s in dagcheck.load_stages(root)}
        return {k: (set(by[f"precompute@{k}"].deps), by[f"precompute@{k}"].cmds[0])
                for k in ("afhq_cat_dog_wild", "mnist_sample")}

    cifar, mnist = "data/models/cifar/backbone.pt", "data/models/vision/backbone/backbone.pt"
    default = precompute_deps(repo_root)
    assert cifar in default["afhq_cat_dog_wild"][0] and mnist not in default["afhq_cat_dog_wild"][0]
    assert f" {cifar} " in default["afhq_cat_dog_wild"][1] and mnist in default["mnist_sample"][0]
    for f in ("dvc.yaml", "params.yaml"):
        shutil.copy(repo_root / f, tmp_path / f)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["dvc", "init", "-q", "--subdir"], cwd=tmp_path, check=True)
    p = yaml.safe_load((tmp_path / "params.yaml").read_text())
    p["vision"]["precompute"]["afhq_cat_dog_wild"]["backbone"] = mnist
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    switched = precompute_deps(tmp_path)
    assert mnist in switched["afhq_cat_dog_wild"][0] and cifar not in switched["afhq_cat_dog_wild"][0]
    assert f" {mnist} " in switched["afhq_cat_dog_wild"][1] and switched["mnist_sample"] == default["mnist_sample"]
