"""Stage smoke tests at tiny scale: index -> pretrain_backbone -> precompute, through the stage CLIs."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlpipe.core.errors import DataError
from dlpipe.io.arrays import open_store
from dlpipe.io.checkpoint import load_model
from dlpipe.scales import apply_scale
from dlpipe.vision.features import file_sha256

REPO = Path(__file__).resolve().parents[2]


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "stages" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _tree_sha(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def work(tmp_path_factory, mirror):
    """Tiny params, a 25-per-class slice of mnist_sample (as the download stage lays it out) and AFHQ."""
    root = tmp_path_factory.mktemp("vision")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "scales", root / "scales")
    apply_scale(root / "params.yaml", "tiny")
    seen: Counter = Counter()
    with tarfile.open(mirror / "mnist_sample" / "mnist_sample.tgz") as tar:
        for m in tar:
            parts = Path(m.name).parts
            if m.isfile() and len(parts) == 4 and seen[parts[1:3]] < 25:   # mnist_sample/split/cls/x.png
                seen[parts[1:3]] += 1
                m.name = str(Path(*parts[1:]))                            # strip: 1, like download
                tar.extract(m, root / "raw" / "mnist_sample", filter="data")
    return root


def _run(work: Path, stage: str, *args: str) -> dict:
    metrics = work / "reports" / f"{stage}-{abs(hash(args))}.json"
    _stage(stage)(["--params", str(work / "params.yaml"), *args, "--metrics", str(metrics)])
    return json.loads(metrics.read_text())


@pytest.mark.slow
def test_index_pretrain_precompute(work, mirror):
    m = _run(work, "index_images", "--format", "idx", str(mirror / "mnist"), str(work / "idx" / "mnist"))
    assert m["per_split"] == {"train": 160, "valid": 40} and m["n_converted"] == 200   # tiny: 20 per class
    assert np.load(work / "idx" / "mnist" / "train_images.npy").shape == (160, 28, 28)

    model = work / "models" / "backbone.pt"
    m = _run(work, "pretrain_backbone", str(work / "idx" / "mnist"), str(model),
             "--log-dir", str(work / "logs" / "pretrain"))
    assert 0.0 <= m["accuracy"] <= 1.0 and m["n_train"] == 160 and model.is_file()
    assert (work / "logs" / "pretrain" / "history.tsv").is_file() and (work / "logs" / "pretrain" / "curves.png").is_file()

    m = _run(work, "index_images", "--format", "folder", str(work / "raw" / "mnist_sample"), str(work / "idx" / "ms"))
    assert m["per_split"] == {"train": 40, "valid": 40} and m["modes"] == {"L": 80} and m["n_converted"] == 80
    index = pd.read_csv(work / "idx" / "ms" / "index.csv")

    outs = [work / "feats" / f"ms{i}" for i in (1, 2)]
    for out in outs:
        m = _run(work, "precompute", "--dataset", "mnist_sample", str(work / "raw" / "mnist_sample"),
                 str(work / "idx" / "ms"), str(model), str(out))
    assert m["train"]["rows"] == 40 and m["total"]["compression_ratio"] > 0 and m["total"]["images_per_s"] > 0
    assert _tree_sha(outs[0]) == _tree_sha(outs[1])          # same params + seed -> identical bytes

    sha = file_sha256(model)
    r = open_store(outs[0] / "train", expect={"backbone_sha256": sha, "layer": "pool"})
    cfg = load_model(model)["config"]
    assert r.shape == (40, cfg["nf"] * 2 ** len(cfg["layers"])) and r.meta["classes"] == ["3", "7"] and r.meta["row_order"]["seed"] == 42
    order = r.array("order")
    assert sorted(order) == list(range(40)) and list(order) != list(range(40))    # pre-shuffled rows
    rows = r.array("index_row")
    assert (index.loc[rows, "split"] == "train").all()
    assert list(r.labels) == [["3", "7"].index(str(c)) for c in index.loc[rows, "label"]]
    with pytest.raises(DataError, match="computed with backbone .* rerun precompute"):
        open_store(outs[0] / "valid", expect={"backbone_sha256": "0" * 64})


@pytest.mark.slow
def test_afhq_rgb_at_64px(work, mirror, tmp_path):
    """AFHQ (no split folders): seeded stratified split, RGB stores at 64x64 from a fresh tiny backbone."""
    m = _run(work, "index_images", "--format", "folder", str(mirror / "afhq_cat_dog_wild"), str(tmp_path / "idx"))
    assert m["n_classes"] == 3 and m["per_split"]["valid"] >= 3 and m["modes"] == {"RGB": 41}
    model = work / "models" / "backbone.pt"
    if not model.exists():
        pytest.skip("needs the backbone from test_index_pretrain_precompute")
    m = _run(work, "precompute", "--dataset", "afhq_cat_dog_wild", str(mirror / "afhq_cat_dog_wild"),
             str(tmp_path / "idx"), str(model), str(tmp_path / "feats"))
    assert m["total"]["rows"] == 41
    r = open_store(tmp_path / "feats" / "valid")
    assert r.meta["input_size"] == 64 and r.meta["image_mode"] == "RGB" and len(r) == m["valid"]["rows"]
