"""Keep dvc.yaml honest: every stage depends on exactly the code, data and params it uses.

For each stage (``foreach``/``matrix`` expanded by DVC itself) the script in its ``cmd`` is parsed
(AST, no import) and every ``dlpipe`` module it imports is followed transitively, including the
package ``__init__.py`` files that Python executes on the way. Each of those files, and each
package data file such a module reads (:data:`DATA_FILES`), must be covered by a ``deps:`` entry
(the file itself or a directory holding it). Depending on all of ``src/`` or ``src/dlpipe`` fails
(every typo would rerun the whole DAG), and so does a ``src/`` dep the stage never imports.

Params honesty needs a run: :func:`dlpipe.core.params.load` appends each section it reads to
``$DLPIPE_PARAMS_TRACE`` together with ``$DVC_STAGE``; :func:`check_params` compares those reads
with the stage's ``params:``. Usage::

    dlpipe check-deps                    # static deps check of ./dvc.yaml (exit 1 on problems)
    dlpipe check-deps --trace trace.jsonl   # ... plus params honesty from a traced `dvc repro`
"""
from __future__ import annotations

import argparse
import ast
import functools
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PKG = "dlpipe"
SRC = "src"
# Package data read at run time, by the module that reads it (module -> files, repo-relative).
DATA_FILES: dict[str, tuple[str, ...]] = {
    "dlpipe.registry": ("src/dlpipe/datasets.yaml",),
}
# Console scripts from pyproject.toml: a cmd `dlpipe ...` runs this module.
CONSOLE_SCRIPTS = {"dlpipe": "dlpipe.cli"}
TOO_BROAD = {".", SRC, f"{SRC}/{PKG}"}


@dataclass(frozen=True)
class StageInfo:
    """What dvc.yaml says about one (expanded) stage."""

    name: str
    cmds: tuple[str, ...]
    deps: tuple[str, ...]                 # repo-relative POSIX paths
    params: dict[str, tuple[str, ...]]    # params file -> keys
    task: str | None


def load_stages(root: str | Path = ".") -> list[StageInfo]:
    """Every stage of the repo's dvc.yaml files, expanded by DVC (``name@item`` for foreach)."""
    from dvc.repo import Repo

    root = Path(root).resolve()
    out = []
    with Repo(str(root)) as repo:
        for st in repo.index.stages:
            if not getattr(st, "cmd", None):
                continue  # .dvc files (imports / tracked data) have no command
            deps, params = [], {}
            for d in st.deps:
                rel = _rel(Path(st.wdir) / d.def_path, root)
                if hasattr(d, "params"):
                    params[rel] = tuple(d.params or ())
                else:
                    deps.append(rel)
            cmds = (st.cmd,) if isinstance(st.cmd, str) else tuple(st.cmd)
            task = (st.meta or {}).get("task") if isinstance(st.meta, dict) else None
            out.append(StageInfo(stage_name(st, root), cmds, tuple(deps), params, task))
    return out


def stage_name(stage, root: Path) -> str:
    """DVC's address of a stage as seen from the repo root (``name@item``; ``sub/dvc.yaml:name``)."""
    file = _rel(Path(stage.dvcfile.path), Path(root).resolve())
    return stage.name if file == "dvc.yaml" else f"{file}:{stage.name}"


def _rel(path: Path, root: Path) -> str:
    return PurePosixPath(Path(path).resolve().relative_to(root)).as_posix()


# ---------------------------------------------------------------- what a cmd executes


def entry_points(cmd: str, root: Path) -> list[Path]:
    """Python files a shell command runs: ``python X.py``, ``python -m mod``, ``dlpipe ...``."""
    found = []
    for part in _shell_parts(cmd):
        words = shlex.split(part)
        if not words:
            continue
        exe = Path(words[0]).name
        if exe in CONSOLE_SCRIPTS:
            found.append(module_file(CONSOLE_SCRIPTS[exe], root))
        elif exe.startswith("python") or exe in ("torchrun",):
            found.extend(_python_target(words[1:], root))
    return [f for f in found if f is not None]


def _shell_parts(cmd: str) -> list[str]:
    parts = [cmd]
    for sep in ("&&", "||", ";", "|"):
        parts = [p for chunk in parts for p in chunk.split(sep)]
    return parts


def _python_target(args: list[str], root: Path) -> list[Path | None]:
    it = iter(args)
    for a in it:
        if a == "-m":
            mod = next(it, "")
            if mod == "torch.distributed.run":
                continue  # torchrun: the script follows its own options
            return [module_file(mod, root)] if mod.split(".")[0] == PKG else []
        if a.endswith(".py"):
            return [root / a]
    return []


# ---------------------------------------------------------------- import graph


def module_file(module: str, root: Path) -> Path | None:
    """``dlpipe.text.rules`` -> src/dlpipe/text/rules.py or .../rules/__init__.py (None if neither)."""
    base = root / SRC / Path(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def module_name(path: Path, root: Path) -> str | None:
    """Inverse of :func:`module_file` for files under src/; None for scripts."""
    try:
        rel = path.resolve().relative_to((root / SRC).resolve())
    except ValueError:
        return None
    parts = list(rel.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _executed(module: str, root: Path) -> list[Path]:
    """Files run by importing ``module``: each parent package's __init__ then the module."""
    parts = module.split(".")
    files = [module_file(".".join(parts[:i]), root) for i in range(1, len(parts) + 1)]
    return [f for f in files if f is not None]


def _imports(path: Path, root: Path) -> frozenset[Path]:
    """dlpipe files (and sibling scripts) executed by the import statements in ``path``."""
    return _imports_at(path, root, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _imports_at(path: Path, root: Path, mtime_ns: int) -> frozenset[Path]:
    """Cached per file version: 50 stages share most of their imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    me = module_name(path, root)
    package = (me if path.name == "__init__.py" else me.rpartition(".")[0]) if me else None
    found: set[Path] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found |= _resolve(alias.name, root, path)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base is None:
                continue
            found |= _resolve(base, root, path)
            for alias in node.names:  # `from pkg import mod` imports the submodule too
                sub = module_file(f"{base}.{alias.name}", root) if base.split(".")[0] == PKG else None
                if sub is not None:
                    found |= set(_executed(f"{base}.{alias.name}", root))
        elif isinstance(node, ast.Call) and _is_import_module(node):
            found |= _resolve(node.args[0].value, root, path)
    return frozenset(found)


def _absolute(node: ast.ImportFrom, package: str | None) -> str | None:
    if node.level == 0:
        return node.module
    if package is None:
        return None  # relative import in a script: not resolvable, not ours
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_import_module(node: ast.Call) -> bool:
    fn = node.func
    name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", None)
    return (name == "import_module" and len(node.args) == 1
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))


def _resolve(module: str, root: Path, importer: Path) -> set[Path]:
    if module.split(".")[0] == PKG:
        return set(_executed(module, root))
    if module_name(importer, root) is None:  # a script: `import _common` finds a sibling file
        sibling = importer.parent / f"{module.split('.')[0]}.py"
        if sibling.is_file():
            return {sibling}
    return set()


def closure(entries: list[Path], root: Path) -> set[Path]:
    """Every file executed, transitively, by running ``entries`` (the entries included)."""
    seen: set[Path] = set()
    todo = [e.resolve() for e in entries]
    while todo:
        f = todo.pop()
        if f in seen or not f.is_file():
            continue
        seen.add(f)
        todo.extend(p.resolve() for p in _imports(f, root))
    return seen


def required_files(stage: StageInfo, root: str | Path = ".") -> set[str]:
    """Repo-relative files ``stage`` executes or reads as package data: its deps must cover them."""
    root = Path(root).resolve()
    files = closure([e for c in stage.cmds for e in entry_points(c, root)], root)
    need = {_rel(f, root) for f in files}
    for f in files:
        need |= set(DATA_FILES.get(module_name(f, root) or "", ()))
    return need


# ---------------------------------------------------------------- checks


def covers(dep: str, path: str) -> bool:
    """A dep covers a file when it is the file or a directory above it."""
    dep = dep.rstrip("/")
    return path == dep or path.startswith(dep + "/")


def check_deps(stage: StageInfo, root: str | Path = ".") -> list[str]:
    """Problems with ``stage``'s deps: missing code/data, over-broad or unused src deps."""
    need = required_files(stage, root)
    if not need:
        return [f"{stage.name}: cannot find the Python script in cmd {stage.cmds!r}"]
    problems = []
    for dep in stage.deps:
        if dep.rstrip("/") in TOO_BROAD:
            problems.append(f"{stage.name}: depends on all of '{dep}' (list the modules it imports instead)")
        elif covers(SRC, dep) and not any(covers(dep, f) for f in need):
            problems.append(f"{stage.name}: depends on '{dep}' but never imports or reads it (spurious reruns)")
    for f in sorted(need):
        if not any(covers(d, f) for d in stage.deps):
            problems.append(f"{stage.name}: runs or reads '{f}' but it is not in deps")
    return problems


def read_trace(path: str | Path) -> dict[str, set[tuple[str, str]]]:
    """Trace JSON lines -> {stage: {(params file, section), ...}} (records without a stage dropped)."""
    reads: dict[str, set[tuple[str, str]]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not a JSON line: {e}") from None
        if rec.get("stage"):
            key = rec.get("section") or rec.get("key")
            reads.setdefault(rec["stage"], set()).add((PurePosixPath(rec["params"]).name, key))
    return reads


def check_params(stage: StageInfo, reads: set[tuple[str, str]]) -> list[str]:
    """Every key a stage read must be declared in ``params:``, and every declared key read."""
    declared = {(PurePosixPath(f).name, k) for f, keys in stage.params.items() for k in keys}
    problems = [f"{stage.name}: reads {f}:{k} but does not declare it in params"
                for f, k in sorted(reads - declared)]
    problems += [f"{stage.name}: declares {f}:{k} in params but never reads it"
                 for f, k in sorted(declared - reads)]
    return problems


def unmapped_package_data(root: str | Path = ".") -> list[str]:
    """Non-Python files in the package that no module is known (DATA_FILES) to read."""
    root = Path(root).resolve()
    mapped = {f for files in DATA_FILES.values() for f in files}
    pkg = root / SRC / PKG
    data = [_rel(p, root) for p in pkg.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts]
    return [f"package data '{f}' is not in dagcheck.DATA_FILES (which module reads it?)"
            for f in sorted(data) if f not in mapped]


def check(root: str | Path = ".", trace: str | Path | None = None) -> list[str]:
    """All problems in the repo at ``root`` (deps always; params when a trace is given)."""
    stages = load_stages(root)
    problems = unmapped_package_data(root)
    for st in stages:
        problems += check_deps(st, root)
    if trace is not None:
        reads = read_trace(trace)
        problems += [p for st in stages if st.name in reads for p in check_params(st, reads[st.name])]
    return problems


def report(root: str | Path = ".", trace: str | Path | None = None) -> int:
    """Print every problem and a summary line; the exit status for `dlpipe check-deps`."""
    from dvc.exceptions import DvcException

    try:
        problems, n = check(root, trace), len(load_stages(root))
    except DvcException as e:
        print(f"check-deps: DVC cannot read the pipeline: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    print(f"check-deps: {n} stages, {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dlpipe check-deps", description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=".", help="repository root (default: .)")
    ap.add_argument("--trace", help="a $DLPIPE_PARAMS_TRACE file from a traced `dvc repro`")
    args = ap.parse_args(argv)
    return report(args.root, args.trace)


if __name__ == "__main__":
    sys.exit(main())
