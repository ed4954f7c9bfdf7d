"""`dlpipe status`: per task, which stages are up to date, which will rerun, and why.

It reads DVC's own verdict (``dvc status``) and sharpens it where DVC is terse: a changed params
section is broken down into the keys that differ from dvc.lock (``imdb.train_classifier.lrs``), and
a stage whose own inputs are unchanged but which sits below a changed stage is shown as
``upstream changed`` (DVC reruns it when the upstream outputs come out different)::

    $ dlpipe status
    task imdb
      finetune_lm@fwd          up to date
      train_classifier@fwd     changed     params changed: imdb.train_classifier.lrs
      evaluate_classifier@fwd  upstream    upstream changed: train_classifier@fwd
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from dlpipe.dagcheck import stage_name

NO_TASK = "(no meta.task)"


@dataclass(frozen=True)
class StageStatus:
    task: str
    stage: str
    state: str            # "up to date" | "changed" | "never run" | "upstream"
    reasons: tuple[str, ...]


def collect(root: str | Path = ".") -> list[StageStatus]:
    """The status of every stage of the repo at ``root``, in dvc.yaml order."""
    from dvc.repo import Repo

    root = Path(root).resolve()
    lock = _read_lock(root / "dvc.lock")
    with Repo(str(root)) as repo:
        raw = repo.status()
        stages = [s for s in repo.index.stages if getattr(s, "cmd", None)]
        graph = repo.index.graph
        upstream = {stage_name(s, root): sorted(stage_name(u, root) for u in _ancestors(graph, s))
                    for s in stages}
        out = []
        for st in stages:
            name = stage_name(st, root)
            task = str((st.meta or {}).get("task", NO_TASK)) if isinstance(st.meta, dict) else NO_TASK
            if name not in lock:
                out.append(StageStatus(task, name, "never run", ()))
            elif st.addressing in raw:  # DVC keys status by address relative to the cwd
                out.append(StageStatus(task, name, "changed", tuple(_reasons(raw[st.addressing], lock[name], root))))
            else:
                out.append(StageStatus(task, name, "up to date", ()))
    changed = {s.stage for s in out if s.state in ("changed", "never run")}
    return [_mark_upstream(s, upstream[s.stage], changed) for s in out]


def _ancestors(graph, stage) -> set:
    import networkx as nx

    return nx.descendants(graph, stage)  # DVC's edges point from a stage to the stages it depends on


def _mark_upstream(s: StageStatus, ups: list[str], changed: set[str]) -> StageStatus:
    hit = [u for u in ups if u in changed]
    if s.state != "up to date" or not hit:
        return s
    return StageStatus(s.task, s.stage, "upstream", (f"upstream changed: {', '.join(hit)}",))


def _read_lock(path: Path) -> dict:
    if not path.is_file():
        return {}
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stages", {})


def _reasons(entries: list, locked: dict, root: Path) -> list[str]:
    """DVC's status entries for one stage as readable phrases."""
    reasons = []
    for entry in entries:
        if isinstance(entry, str):  # "changed command", "always changed"
            reasons.append(entry)
            continue
        for kind, items in entry.items():
            noun = kind.replace("changed ", "")
            files, params_ = [], []
            for path, what in items.items():
                if isinstance(what, dict):  # a params file: {section: "modified"}
                    params_ += _param_keys(path, what, locked.get("params", {}).get(path, {}), root)
                else:
                    files.append(f"{path} ({what})")
            if files:
                reasons.append(f"{noun} changed: {', '.join(files)}")
            if params_:
                reasons.append(f"params changed: {', '.join(params_)}")
    return reasons


def _param_keys(file: str, changed: dict, locked: dict, root: Path) -> list[str]:
    """Break changed sections down into the dotted keys that differ from dvc.lock."""
    current = _read_params(root / file)
    keys = []
    for section, what in changed.items():
        if what != "modified" or section not in locked:
            keys.append(f"{section} ({what})")
            continue
        now = _lookup(current, section)
        diff = _diff(locked[section], now, section)
        keys += diff or [section]
    return keys


def _read_params(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {} if path.is_file() else {}


def _lookup(data, dotted: str):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _diff(old, new, prefix: str) -> list[str]:
    """Dotted keys whose values differ between two nested mappings."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [k for key in sorted(set(old) | set(new), key=str)
                for k in _diff(old.get(key), new.get(key), f"{prefix}.{key}")]
    return [] if old == new else [prefix]


def render(rows: list[StageStatus]) -> str:
    """A table grouped by task; stages needing work carry their reasons."""
    if not rows:
        return "no stages in dvc.yaml"
    width = max(len(r.stage) for r in rows)
    lines = []
    for task in dict.fromkeys(r.task for r in rows):
        lines.append(f"task {task}")
        for r in (r for r in rows if r.task == task):
            why = "; ".join(r.reasons)
            lines.append(f"  {r.stage:<{width}}  {r.state:<10}  {why}".rstrip())
    todo = sum(r.state != "up to date" for r in rows)
    lines.append(f"{len(rows) - todo} up to date, {todo} to run (`dvc repro` reruns only those)")
    return "\n".join(lines)


def report(root: str | Path = ".") -> int:
    """Print the status table; the exit status for `dlpipe status`."""
    from dvc.exceptions import DvcException

    try:
        print(render(collect(root)))
    except DvcException as e:
        print(f"status: DVC cannot read the pipeline: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dlpipe status", description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=".", help="repository root (default: .)")
    return report(ap.parse_args(argv).root)


if __name__ == "__main__":
    sys.exit(main())
