"""The one entry point of every stage script: argv, params, DDP relaunch, metrics on rank 0, errors.

A stage script declares its arguments and which params sections feed which keyword of ONE library
function; everything else happens here::

    def main(argv=None):
        stage_main(__doc__, pretrain_lm, argv, ddp=True, run_dirs=True,
                   args=[arg("data", type=Path), arg("out", type=Path), arg("--direction", choices=DIRECTIONS)],
                   params={"m": "imdb.model", "p": "imdb.pretrain_lm", "rt": "runtime"})

The function is called with keyword arguments only (each argument's ``dest``, each params keyword
with its section loaded into the dataclass the function annotates it with, and ``dirs`` for
training stages) and returns its metrics dict, written to ``--metrics`` by rank 0.
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

from dlpipe.core import params as P
from dlpipe.core.atomic import write_json
from dlpipe.core.errors import DataError, DownloadError, ParamsError


@dataclass(frozen=True)
class RunDirs:
    """A training stage's two directories: reports (history.tsv, curves.png) and resume checkpoints."""
    log_dir: Optional[Path] = None     # a DVC plots/metrics directory
    run_dir: Optional[Path] = None     # checkpoints: NOT a DVC output (deleted when the run finishes)


def arg(*names: str, **kw) -> tuple[tuple[str, ...], dict]:
    """One argparse argument for :func:`stage_main`, e.g. ``arg("out", type=Path, help="output dir")``."""
    return names, kw


def is_main_process() -> bool:
    """Rank 0 under torchrun (read from its environment: no torch import for light stages)."""
    return int(os.environ.get("RANK", "0")) == 0


def parser(doc: str, args: Sequence[tuple], run_dirs: bool, metrics: bool) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0],
                                 epilog="\n".join(doc.strip().splitlines()[1:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    for names, kw in args:
        ap.add_argument(*names, **kw)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    if metrics:
        ap.add_argument("--metrics", type=Path, help="metrics JSON to write (rank 0)")
    if run_dirs:
        ap.add_argument("--log-dir", type=Path, required=True, help="history.tsv + curves.png")
        ap.add_argument("--run-dir", type=Path, help="resume checkpoints (not a DVC output; none: no checkpoints)")
    return ap


def load_params(fn: Callable, params: Mapping[str, str], path: Path, values: Mapping[str, object]) -> dict:
    """fn keyword -> its params section, loaded into the dataclass ``fn`` annotates it with."""
    hints = typing.get_type_hints(fn)
    out = {}
    for name, section in params.items():
        if name not in hints:
            raise TypeError(f"{fn.__name__} has no annotated keyword '{name}' for params section {section!r}")
        cls = next((t for t in typing.get_args(hints[name]) if t is not type(None)), hints[name])  # X | None -> X
        out[name] = P.load(cls, section.format(**values), path)
    return out


Params = Union[Mapping[str, str], Callable[[argparse.Namespace], Mapping[str, str]]]


def stage_main(doc: str, fn: Callable[..., Optional[dict]], argv: Optional[Sequence[str]] = None, *,
               args: Sequence[tuple] = (), params: Params = {}, run_dirs: bool = False,
               ddp: bool = False, metrics: bool = True) -> Optional[dict]:
    """Run one stage; a params, data or download error ends the process with one line (exit 1).

    Args:
        doc: the script's docstring (first line: what it does; the rest: usage).
        fn: the library function doing the work; returns a metrics dict (or None).
        args: :func:`arg` tuples for argparse (paths, choices...).
        params: fn keyword -> params.yaml section (``{name}`` in a section is filled from the arguments),
            or a function of the parsed arguments giving that mapping (a stage reading params only in
            one mode).
        run_dirs: add ``--log-dir`` (required) and ``--run-dir``; fn gets ``dirs=RunDirs(...)``.
        ddp: with ``runtime.nproc_per_node > 1`` (params must map ``rt`` to ``runtime``) the script
            re-runs itself under torchrun and this process returns once the workers are done.
        metrics: add ``--metrics PATH``; rank 0 writes fn's result there.
    """
    stage = Path(sys.argv[0]).stem
    try:
        return _run(doc, fn, argv, args, params, run_dirs, ddp, metrics)
    except (ParamsError, DataError, DownloadError) as e:
        sys.exit(f"{stage}: {type(e).__name__}: {e}")


def _run(doc, fn, argv, args, params, run_dirs, ddp, metrics) -> Optional[dict]:
    a = parser(doc, args, run_dirs, metrics).parse_args(argv)
    values = {k: v for k, v in vars(a).items() if k not in ("params", "metrics", "log_dir", "run_dir")}
    sections = params(a) if callable(params) else params
    accepted = inspect.signature(fn).parameters
    only_in_sections = {k for k in values if k not in accepted and any(f"{{{k}}}" in s for s in sections.values())}
    kw = {**{k: v for k, v in values.items() if k not in only_in_sections},
          **load_params(fn, sections, a.params, values)}
    if run_dirs:
        kw["dirs"] = RunDirs(log_dir=a.log_dir, run_dir=a.run_dir)
    if ddp:
        from dlpipe.core.launch import launch
        if launch(kw["rt"].nproc_per_node):     # > 1 process: torchrun re-ran this script and did the work
            return None
    result = fn(**kw)
    if metrics and a.metrics is not None and result is not None and is_main_process():
        write_json(a.metrics, result)
    return result
