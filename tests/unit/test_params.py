"""The strict params loader: every bad params.yaml names the full dotted key and what was expected."""
from __future__ import annotations

import copy
import json
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Literal

import pytest
import yaml

from dlpipe.core.params import ParamsError, load


@dataclass(frozen=True)
class Opt:
    name: Literal["adam", "sgd"]
    betas: tuple[float, ...] = field(metadata=dict(nonempty=True))


@dataclass(frozen=True)
class Stage:
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0, le=1))
    drop: float = field(metadata=dict(ge=0, lt=1))
    use_fp16: bool
    lang: str = field(metadata=dict(choices=("en", "fr")))
    sizes: list[int] = field(metadata=dict(each=True, ge=1))
    opt: Opt
    warmup: Opt | None
    max_items: int | None
    extra: dict[str, int]


GOOD = {"task": {"stage": {
    "epochs": 2, "lr": 0.01, "drop": 0.1, "use_fp16": False, "lang": "en", "sizes": [1, 2],
    "opt": {"name": "adam", "betas": [0.9, 0.99]}, "warmup": None, "max_items": None, "extra": {"a": 1},
}}}
DEL = object()


def write(tmp_path, data=None, text=None):
    path = tmp_path / "params.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(data, sort_keys=False))
    return path


def with_(key: str, value) -> dict:
    """GOOD with the dotted ``key`` set to ``value`` (or deleted, for DEL)."""
    data = copy.deepcopy(GOOD)
    *parents, last = key.split(".")
    node = data
    for p in parents:
        node = node[p]
    if value is DEL:
        del node[last]
    else:
        node[last] = value
    return data


BAD = [  # (id, data or raw YAML text, expected message fragment after the file name)
    ("typo-unknown-key", with_("task.stage.epoch", 3), "task.stage.epoch: unknown key (expected one of: drop, epochs, extra,"),
    ("missing-key", with_("task.stage.lr", DEL), "task.stage.lr: missing key (a number expected)"),
    ("str-for-int", with_("task.stage.epochs", "two"), "task.stage.epochs: expected an integer, got 'two' (str)"),
    ("bool-for-int", with_("task.stage.epochs", True), "task.stage.epochs: expected an integer, got True (bool)"),
    ("float-for-int", with_("task.stage.epochs", 2.5), "task.stage.epochs: expected an integer, got 2.5 (float)"),
    ("bool-for-float", with_("task.stage.lr", True), "task.stage.lr: expected a number, got True (bool)"),
    ("str-for-bool", with_("task.stage.use_fp16", "yes"), "task.stage.use_fp16: expected true/false, got 'yes' (str)"),
    ("below-ge", with_("task.stage.epochs", 0), "task.stage.epochs: expected a value >= 1, got 0"),
    ("not-gt", with_("task.stage.lr", 0), "task.stage.lr: expected a value > 0, got 0.0"),
    ("above-le", with_("task.stage.lr", 3), "task.stage.lr: expected a value <= 1, got 3.0"),
    ("not-lt", with_("task.stage.drop", 1.0), "task.stage.drop: expected a value < 1, got 1.0"),
    ("not-in-choices", with_("task.stage.lang", "de"), "task.stage.lang: expected one of ['en', 'fr'], got 'de' (str)"),
    ("literal", with_("task.stage.opt.name", "adamw"), "task.stage.opt.name: expected one of ['adam', 'sgd'], got 'adamw'"),
    ("int-and-str-unknown-keys", with_("task.stage.opt", {"name": "adam", "betas": [0.9], 1: "x", "eps": 1}),
     "task.stage.opt.1: unknown key (expected one of: betas, name)"),
    ("nested-unknown-key", with_("task.stage.opt.eps", 1e-8), "task.stage.opt.eps: unknown key (expected one of: betas, name)"),
    ("nested-missing-key", with_("task.stage.opt.betas", DEL), "task.stage.opt.betas: missing key (a list of a number expected)"),
    ("nested-not-mapping", with_("task.stage.opt", "adam"), "task.stage.opt: expected a mapping for Opt, got 'adam' (str)"),
    ("optional-nested-bad-key", with_("task.stage.warmup", {"name": "sgd", "betas": [0.9], "typo": 1}),
     "task.stage.warmup.typo: unknown key (expected one of: betas, name)"),
    ("optional-int-str", with_("task.stage.max_items", "lots"), "task.stage.max_items: expected an integer or null, got 'lots' (str)"),
    ("list-item-type", with_("task.stage.sizes", [1, "x"]), "task.stage.sizes[1]: expected an integer, got 'x' (str)"),
    ("list-item-range", with_("task.stage.sizes", [4, 0]), "task.stage.sizes[1]: expected a value >= 1, got 0"),
    ("scalar-for-list", with_("task.stage.sizes", 3), "task.stage.sizes: expected a list of an integer, got 3 (int)"),
    ("empty-nonempty", with_("task.stage.opt.betas", []), "task.stage.opt.betas: expected a non-empty value, got ()"),
    ("dict-value-type", with_("task.stage.extra", {"a": "x"}), "task.stage.extra.a: expected an integer, got 'x' (str)"),
    ("section-not-mapping", with_("task.stage", [1, 2]), "task.stage: expected a mapping for Stage, got [1, 2] (list)"),
    ("missing-section", with_("task.stage", DEL), "missing key 'task.stage'"),
    ("missing-task", {"other": {}}, "missing key 'task'"),
    ("malformed-yaml", "task:\n  stage: {epochs: [1,\n", "not valid YAML"),
    ("top-level-list", "- 1\n- 2\n", "expected a mapping at the top level, got list"),
    ("empty-file", "", "expected a mapping at the top level, got NoneType"),
]


@pytest.mark.fault("Params", "ParamsError naming params.yaml, the full dotted key and what was expected")
@pytest.mark.parametrize("data,fragment", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_params_name_key_and_expectation(tmp_path, data, fragment):
    path = write(tmp_path, text=data) if isinstance(data, str) else write(tmp_path, data)
    with pytest.raises(ParamsError) as e:
        load(Stage, "task.stage", path)
    assert str(e.value).startswith(f"{path}: ")
    assert fragment in str(e.value), str(e.value)


@pytest.mark.fault("Params", "params file missing: ParamsError naming the path")
def test_missing_file(tmp_path):
    with pytest.raises(ParamsError, match="params.yaml: params file not found"):
        load(Stage, "task.stage", tmp_path / "params.yaml")


def test_good_params_load_frozen_and_converted(tmp_path):
    p = load(Stage, "task.stage", write(tmp_path, GOOD))
    assert p.opt == Opt("adam", (0.9, 0.99)) and p.warmup is None and p.sizes == [1, 2]
    assert isinstance(p.lr, float) and p.extra == {"a": 1}
    with pytest.raises(FrozenInstanceError):
        p.epochs = 3


@pytest.mark.parametrize("text,value", [("1e-3", 0.001), ("5E-1", 0.5), ("1.0e-2", 0.01), ("+2.5e-1", 0.25), (".5", 0.5)])
def test_exponent_floats_are_numbers(tmp_path, text, value):
    """PyYAML reads `1e-3` (no dot) as a string; DVC's YAML 1.2 reader reads a number. The loader agrees with DVC."""
    raw = yaml.safe_dump(GOOD, sort_keys=False).replace("lr: 0.01", f"lr: {text}")
    assert f"lr: {text}" in raw
    p = load(Stage, "task.stage", write(tmp_path, text=raw))
    assert p.lr == pytest.approx(value) and isinstance(p.lr, float)


def test_non_numeric_string_still_rejected_for_float(tmp_path):
    with pytest.raises(ParamsError, match=r"task.stage.lr: expected a number, got 'fast' \(str\)"):
        load(Stage, "task.stage", write(tmp_path, with_("task.stage.lr", "fast")))


def test_trace_records_sections_read(tmp_path, monkeypatch):
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("DLPIPE_PARAMS_TRACE", str(trace))
    path = write(tmp_path, GOOD)
    load(Stage, "task.stage", path)
    records = [json.loads(l) for l in trace.read_text().splitlines()]
    assert [(r["params"], r["section"]) for r in records] == [(str(path), "task.stage")]
