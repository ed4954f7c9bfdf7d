"""Scale overlays: ``scales/{tiny,sample,full}.yaml`` merged into params.yaml.

Each overlay holds only the keys that vary with scale, and all three hold exactly the same key
set, so switching scale always sets every one of them (no key keeps a value from the previous
scale). ``apply_scale`` edits params.yaml in place with ruamel.yaml's round-trip mode: comments,
key order and the untouched values (the user's own edits) survive; only overlay keys change.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from dlpipe.core.atomic import write_text
from dlpipe.core.params import ParamsError

SCALES = ("tiny", "sample", "medium", "full")


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap long lines or flow lists
    y.indent(mapping=2, sequence=4, offset=2)
    # ruamel writes every None as an empty value: keep each null as it was spelled (see _Null)
    y.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    y.representer.add_representer(_Null, lambda r, d: r.represent_scalar("tag:yaml.org,2002:null", d.text))
    return y


class _Null:
    """A null value as written in the source (``null``, ``~`` or nothing), so a round trip keeps it."""

    def __init__(self, text: str):
        self.text = text


def _mark_nulls(node, lines: list[str]) -> None:
    """Replace None mapping values by :class:`_Null` carrying their spelling from ``lines``."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if value is None and hasattr(node, "lc"):
            rest = lines[node.lc.key(key)[0]].split(":", 1)[-1].split("#", 1)[0].strip()
            node[key] = _Null(rest if rest in ("null", "Null", "NULL", "~") else "")
        else:
            _mark_nulls(value, lines)


def read_rt(path: Path):
    """Round-trip load of a YAML mapping, naming the file on failure."""
    try:
        data = _yaml().load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def leaf_keys(node: dict, prefix: str = "") -> set[str]:
    """Dotted paths of the non-mapping values in ``node`` (lists count as single values)."""
    keys = set()
    for k, v in node.items():
        path = f"{prefix}{k}"
        keys |= leaf_keys(v, path + ".") if isinstance(v, dict) else {path}
    return keys


def check_overlays(scales_dir: str | os.PathLike) -> dict[str, dict]:
    """Load all overlays and check that they hold identical key sets.

    Returns:
        ``{scale name: round-trip mapping}``.
    """
    scales_dir = Path(scales_dir)
    overlays = {n: read_rt(scales_dir / f"{n}.yaml") for n in SCALES}
    keys = {n: leaf_keys(o) for n, o in overlays.items()}
    union = set().union(*keys.values())
    for key in sorted(union):
        have = [n for n in SCALES if key in keys[n]]
        if len(have) != len(SCALES):
            lack = [f"{n}.yaml" for n in SCALES if n not in have]
            raise ParamsError(
                f"{scales_dir}: key '{key}' is in {', '.join(f'{n}.yaml' for n in have)} but missing from "
                f"{', '.join(lack)} (every scale overlay must set the same keys)"
            )
    return overlays


def apply_scale(params_path: str | os.PathLike, name: str, scales_dir: str | os.PathLike | None = None) -> list[str]:
    """Merge ``scales/<name>.yaml`` into ``params_path`` in place (atomically).

    Args:
        params_path: the params.yaml to edit.
        name: ``tiny``, ``sample`` or ``full``.
        scales_dir: where the overlays are; default ``<params_path dir>/scales``.
    Returns:
        The dotted keys whose value changed.
    """
    params_path = Path(params_path)
    if name not in SCALES:
        raise ParamsError(f"unknown scale '{name}' (expected one of: {', '.join(SCALES)})")
    scales_dir = Path(scales_dir) if scales_dir is not None else params_path.parent / "scales"
    overlay = check_overlays(scales_dir)[name]
    params = read_rt(params_path)
    _mark_nulls(params, params_path.read_text(encoding="utf-8").splitlines())
    changed: list[str] = []
    _merge(params, overlay, "", scales_dir / f"{name}.yaml", changed)
    buf = io.StringIO()
    _yaml().dump(params, buf)
    text = buf.getvalue()
    # ruamel drops the final newline when the file's last line is a replaced value with a comment
    write_text(params_path, text if text.endswith("\n") else text + "\n")
    return changed


def _merge(target: dict, overlay: dict, prefix: str, source: Path, changed: list[str]) -> None:
    for key, value in overlay.items():
        path = f"{prefix}{key}"
        if key not in target:
            raise ParamsError(f"{source}: key '{path}' is not in params.yaml (a typo, or a key the scale adds?)")
        if isinstance(value, dict):
            if not isinstance(target[key], dict):
                raise ParamsError(f"{source}: key '{path}' is a mapping here but not in params.yaml")
            _merge(target[key], value, path + ".", source, changed)
        elif (None if isinstance(target[key], _Null) else target[key]) != value:
            target[key] = value
            changed.append(path)
