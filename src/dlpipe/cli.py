"""The ``dlpipe`` command: small helpers around the DVC pipeline.

    dlpipe tasks                 tasks and their stages, read from dvc.yaml (``meta: {task: ...}``)
    dlpipe datasets [--verify]   the dataset registry and what is present in data/raw
    dlpipe download NAME...      fetch datasets outside DVC (mirror: $DLPIPE_MIRROR)
    dlpipe scale tiny|sample|medium|full  merge scales/<name>.yaml into params.yaml
    dlpipe metrics [--task T]    every stage's metrics, grouped by task, readable in a terminal
    dlpipe probe LM_DIR          linear probe: sentiment in an LM encoder's frozen features

Adding a command: write ``cmd_<name>(args) -> int`` and register it in :func:`build_parser`
with ``_add(sub, "name", cmd_name, help)``; expected failures raise one of ``USER_ERRORS`` and are
printed as one line, without a traceback.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path
from typing import Callable

import yaml

from dlpipe import registry, scales
from dlpipe.core.errors import DataError, DownloadError
from dlpipe.core.params import ParamsError, get_section, read_yaml

USER_ERRORS = (ParamsError, DataError, DownloadError, registry.UnknownDataset, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dlpipe", description="fast.ai Part 2 systems as one DVC pipeline")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = _add(sub, "tasks", cmd_tasks, "list tasks and their stages (from dvc.yaml)")
    p.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"))
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p = _add(sub, "datasets", cmd_datasets, "list registered datasets and whether they are downloaded")
    p.add_argument("--dest", type=Path, default=Path("data/raw"), help="download root (default: data/raw)")
    p.add_argument("--verify", action="store_true", help="re-hash files instead of trusting the stamp")
    p = _add(sub, "download", cmd_download, "download, verify and extract datasets into DEST/NAME")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--dest", type=Path, default=Path("data/raw"), help="download root (default: data/raw)")
    p.add_argument("--mirror", default=None, help="mirror directory or base URL (default: $DLPIPE_MIRROR)")
    p = _add(sub, "scale", cmd_scale, "switch params.yaml to a scale (merges scales/NAME.yaml)")
    p.add_argument("name", choices=scales.SCALES)
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p = _add(sub, "check-deps", cmd_check_deps, "check each stage's deps (and, from a trace, params) against what it uses")
    p.add_argument("--root", type=Path, default=Path("."), help="repository root (default: .)")
    p.add_argument("--trace", type=Path, default=None, help="a $DLPIPE_PARAMS_TRACE file from a traced `dvc repro`")
    p = _add(sub, "status", cmd_status, "per task: which stages are up to date, which will rerun and why")
    p.add_argument("--root", type=Path, default=Path("."), help="repository root (default: .)")
    p = _add(sub, "metrics", cmd_metrics, "every stage's metrics (dvc metrics show), grouped by task, one file per block")
    p.add_argument("--task", default=None, help="only this task (imdb, vision, ...)")
    p.add_argument("--root", type=Path, default=Path("."), help="repository root (default: .)")
    p = _add(sub, "probe", cmd_probe, "linear probe: logistic regression on an LM encoder's frozen, "
             "concat-pooled features (how much sentiment the LM alone carries)")
    p.add_argument("lm_dir", type=Path, metavar="LM_DIR", help="an LM directory (encoder.pt, itos.json)")
    p.add_argument("--direction", choices=("fwd", "bwd"), default="fwd")
    p.add_argument("--data", type=Path, default=Path("data/processed/imdb/clas"),
                   help="labelled id corpora train/ and valid/ (default: data/processed/imdb/clas)")
    p.add_argument("--itos", type=Path, default=Path("data/processed/imdb/lm/itos.json"),
                   help="the vocabulary of --data (default: data/processed/imdb/lm/itos.json)")
    p.add_argument("--bptt", type=int, default=70)
    return ap


def _add(sub, name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(func=func)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except USER_ERRORS as e:
        print(f"dlpipe {args.command}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:          # output piped into `head` and the like: not an error
        sys.stdout = open(os.devnull, "w")
        return 0


# ---- commands -------------------------------------------------------------------------------

def cmd_tasks(args: argparse.Namespace) -> int:
    """Print each task with its (expanded) stage names."""
    groups = stages_by_task(args.dvc_yaml, args.params)
    width = max((len(t) for t in groups), default=4)
    for task, names in groups.items():
        print(f"{task:<{width}}  {len(names):>3} stage{'s' if len(names) != 1 else ' '}  {', '.join(names)}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    """Print the registry as a table with each dataset's local status."""
    rows = [("name", "scale", "size", "files", "status", "license")]
    for ds in registry.all():
        status = _status(ds.name, args.dest, args.verify)
        rows.append((ds.name, ds.scale, human_bytes(ds.total_bytes), str(len(ds.files)), status, _clip(ds.license, 48)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Fetch each named dataset; print what was downloaded and what was already there."""
    from dlpipe.io.download import fetch_dataset  # urllib/tqdm only when downloading

    for name in args.names:
        m = fetch_dataset(name, dest_root=args.dest, mirror=args.mirror)
        via = "".join(f", {p} from source {i + 1} (content verified)" for p, i in m["sources"].items())
        print(f"{name}: {m['downloaded']} downloaded, {m['reused']} already verified, "
              f"{human_bytes(m['bytes'])}, {m['extracted']} archive(s) extracted -> {args.dest / name} "
              f"({m['seconds']:.1f} s){via}")
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    """Merge the scale overlay into params.yaml and list the keys that changed."""
    changed = scales.apply_scale(args.params, args.name)
    print(f"{args.params}: scale {args.name}: {len(changed)} key(s) changed"
          + "".join(f"\n  {k}" for k in changed))
    return 0


def cmd_check_deps(args: argparse.Namespace) -> int:
    """Static deps check of dvc.yaml (dlpipe.dagcheck); params too when given a trace."""
    from dlpipe import dagcheck

    return dagcheck.report(args.root, args.trace)


def cmd_status(args: argparse.Namespace) -> int:
    """DVC's status per task, with changed params broken down to keys (dlpipe.status)."""
    from dlpipe import status

    return status.report(args.root)


def cmd_metrics(args: argparse.Namespace) -> int:
    """Print the workspace's metrics files, grouped by task (dlpipe.metrics_view)."""
    from dlpipe import metrics_view

    print(metrics_view.render(metrics_view.read_dvc_metrics(args.root), args.task))
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Print the probe's metrics as JSON (dlpipe.tasks.ulmfit.probe)."""
    import json

    from dlpipe.tasks.ulmfit.probe import probe_encoder

    print(json.dumps(probe_encoder(args.lm_dir, args.data, args.itos, args.direction, args.bptt), indent=2))
    return 0


# ---- helpers --------------------------------------------------------------------------------

def stages_by_task(dvc_yaml: Path, params: Path) -> dict[str, list[str]]:
    """``{task: [stage names]}`` from each stage's ``meta.task``; foreach/matrix stages expanded."""
    try:
        doc = yaml.safe_load(Path(dvc_yaml).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise DataError(f"{dvc_yaml}: not valid YAML: {e}") from None
    groups: dict[str, list[str]] = {}
    for name, stage in (doc.get("stages") or {}).items():
        body = stage.get("do", stage) if isinstance(stage, dict) else {}
        task = str((body.get("meta") or {}).get("task", "(no meta.task)"))
        groups.setdefault(task, []).extend(_expand(name, stage, params, dvc_yaml))
    return groups


def _expand(name: str, stage: dict, params: Path, source: Path) -> list[str]:
    """DVC's generated names: ``name@item`` (foreach list), ``name@key`` (dict), ``name@a-b`` (matrix)."""
    if "foreach" in stage:
        items = _resolve(stage["foreach"], params, f"{source}: stages.{name}.foreach")
        return [f"{name}@{k}" for k in (items if isinstance(items, (list, dict)) else [])]
    if "matrix" in stage:
        axes = [_resolve(v, params, f"{source}: stages.{name}.matrix.{k}") for k, v in stage["matrix"].items()]
        return [f"{name}@" + "-".join(map(str, combo)) for combo in itertools.product(*axes)]
    return [name]


def _resolve(value, params: Path, where: str):
    """A literal, or a ``${dotted.key}`` looked up in params.yaml."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return get_section(read_yaml(params), value[2:-1].strip(), f"{params} (for {where})")
    return value


def _status(name: str, dest: Path, verify: bool) -> str:
    from dlpipe.io.download import dataset_status

    return dataset_status(name, dest, rehash=verify)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def human_bytes(n: int | None) -> str:
    """1536 -> '1.5 KiB'; None -> '?'."""
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


if __name__ == "__main__":
    sys.exit(main())
