"""Load one section of params.yaml into a frozen dataclass, strictly.

Every stage reads its hyperparameters through :func:`load`. Unknown keys (typos), missing
keys, wrong types, values out of range and values outside a set of choices all fail with
the full dotted key path and what was expected, before the stage does any work.

Field constraints live in dataclass field metadata::

    @dataclass(frozen=True)
    class TokenizeParams:
        n_workers: int = field(metadata=dict(ge=1))
        chunk_size: int = field(metadata=dict(ge=1))
        lang: str = field(metadata=dict(choices=("en",)))

There are no defaults in code: a stage's dataclass fields have no default values, so the
single source of truth is params.yaml (STYLE: no config defaults duplicated in code).

Every section loaded is recorded in the file named by ``$DLPIPE_PARAMS_TRACE`` (if set),
so a test can compare what a stage really read with its ``params:`` in dvc.yaml.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from dlpipe.core.errors import ParamsError  # noqa: F401  (re-exported: dlpipe.core.params.ParamsError)

T = TypeVar("T")
_YAML12_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
DEFAULT_PARAMS = Path("params.yaml")


def read_yaml(path: str | os.PathLike) -> dict:
    """Parse a YAML mapping, naming the file on failure."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def get_section(data: dict, section: str, source: str = "params.yaml") -> Any:
    """Walk a dotted key path (``imdb.tokenize``) into a nested mapping."""
    node: Any = data
    walked = []
    for part in section.split("."):
        walked.append(part)
        if not isinstance(node, dict) or part not in node:
            raise ParamsError(f"{source}: missing key '{'.'.join(walked)}'")
        node = node[part]
    return node


def load(cls: type[T], section: str, path: str | os.PathLike = DEFAULT_PARAMS) -> T:
    """Load ``section`` of the params file into dataclass ``cls``, validating everything.

    Args:
        cls: a (frozen) dataclass type; nested dataclass fields are loaded recursively.
        section: dotted key path, e.g. ``"imdb.train_classifier"``.
        path: the params file.
    Returns:
        An instance of ``cls``.
    """
    data = read_yaml(path)
    node = get_section(data, section, str(path))
    obj = build(cls, node, section, str(path))
    _trace(path, section)
    return obj


def build(cls: type[T], node: Any, key: str, source: str = "params.yaml") -> T:
    """Build dataclass ``cls`` from mapping ``node`` found at dotted ``key``."""
    if not isinstance(node, dict):
        raise ParamsError(f"{source}: {key}: expected a mapping for {cls.__name__}, got {_show(node)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(node) - set(fields), key=str)  # YAML keys may be ints (`1: x`)
    if unknown:
        raise ParamsError(
            f"{source}: {key}.{unknown[0]}: unknown key (expected one of: {', '.join(sorted(fields))})"
        )
    missing = [n for n, f in fields.items() if n not in node and _no_default(f)]
    if missing:
        raise ParamsError(f"{source}: {key}.{missing[0]}: missing key ({_describe(hints[missing[0]])} expected)")
    values = {}
    for name, f in fields.items():
        if name not in node:
            continue
        sub = f"{key}.{name}"
        values[name] = _convert(hints[name], node[name], sub, source)
        _check_meta(f.metadata, values[name], sub, source)
    return cls(**values)


def _no_default(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _convert(tp: Any, value: Any, key: str, source: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key, source)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arms = [a for a in args if a is not type(None)]
        if len(arms) == 1 and (dataclasses.is_dataclass(arms[0]) or isinstance(value, (dict, list))):
            return _convert(arms[0], value, key, source)  # Optional[X]: X's own error names the nested key
        for arg in arms:
            try:
                return _convert(arg, value, key, source)
            except ParamsError:
                pass
        raise ParamsError(f"{source}: {key}: expected {_describe(tp)}, got {_show(value)}")
    if origin is Literal:
        if value not in args:
            raise ParamsError(f"{source}: {key}: expected one of {list(args)}, got {_show(value)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ParamsError(f"{source}: {key}: expected a list of {_describe(args[0]) if args else 'values'}, got {_show(value)}")
        item = args[0] if args else Any
        out = [_convert(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{source}: {key}: expected a mapping, got {_show(value)}")
        return {k: _convert(args[1], v, f"{key}.{k}", source) for k, v in value.items()} if args else dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{source}: {key}: expected true/false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{source}: {key}: expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, str) and _YAML12_FLOAT.fullmatch(value.strip()):
            return float(value)  # `lr: 1e-3`: a string to PyYAML (YAML 1.1), a number to DVC (YAML 1.2)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{source}: {key}: expected a number, got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamsError(f"{source}: {key}: expected a string, got {_show(value)}")
        return value
    raise TypeError(f"params: unsupported field type {tp!r} at {key}")


def _check_meta(meta: typing.Mapping, value: Any, key: str, source: str) -> None:
    """Apply ge/gt/le/lt/choices/nonempty constraints from field metadata."""
    if value is None:
        return
    each = isinstance(value, (list, tuple)) and meta.get("each")
    for i, v in enumerate(value if each else [value]):
        where = f"{key}[{i}]" if each else key
        for op, bound, ok in (("ge", ">=", lambda a, b: a >= b), ("gt", ">", lambda a, b: a > b),
                              ("le", "<=", lambda a, b: a <= b), ("lt", "<", lambda a, b: a < b)):
            if op in meta and not ok(v, meta[op]):
                raise ParamsError(f"{source}: {where}: expected a value {bound} {meta[op]}, got {_show(v)}")
        if "choices" in meta and v not in meta["choices"]:
            raise ParamsError(f"{source}: {where}: expected one of {list(meta['choices'])}, got {_show(v)}")
    if meta.get("nonempty") and len(value) == 0:
        raise ParamsError(f"{source}: {key}: expected a non-empty value, got {_show(value)}")


def _describe(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    if origin is Literal:
        return f"one of {list(args)}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {_describe(args[0]) if args else 'values'}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(tp, str(tp))


def _show(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}... ({type(value).__name__})" if len(text) > 60 else f"{text} ({type(value).__name__})"


def _trace(path: str | os.PathLike, section: str) -> None:
    """Append the section read to $DLPIPE_PARAMS_TRACE (JSON lines), if set."""
    trace = os.environ.get("DLPIPE_PARAMS_TRACE")
    if trace:
        # DVC sets DVC_STAGE for every stage command: it attributes the read to its stage.
        record = {"params": str(path), "section": section,
                  "stage": os.environ.get("DVC_STAGE"), "argv0": sys.argv[0]}
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def as_dict(obj: Any) -> dict:
    """A params dataclass as a plain dict (for checkpoints and reports)."""
    return dataclasses.asdict(obj)
