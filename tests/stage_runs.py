"""Helpers for the reliability tests: tiny workspaces built from the real mirror, stage subprocesses, digests.

Used by test_faults.py, test_determinism.py and test_memory.py. Stages always run as real
subprocesses (``python stages/<name>.py ...``), the way `dvc repro` runs them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parents[1]


def tiny_params(dest: Path, **overrides) -> Path:
    """params.yaml at tiny scale in ``dest``, with dotted-key overrides (``imdb__tokenize__n_workers=2``)."""
    from dlpipe.scales import apply_scale

    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    apply_scale(path, "tiny", REPO / "scales")
    if overrides:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key, value in overrides.items():
            *parents, leaf = key.split("__")
            node = data
            for part in parents:
                node = node[part]
            assert leaf in node, f"override of an unknown key {key}"
            node[leaf] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def stage_cmd(name: str, *args: str | os.PathLike) -> list[str]:
    return [sys.executable, str(REPO / "stages" / f"{name}.py"), *map(str, args)]


def run_stage(name: str, *args: str | os.PathLike, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a stage to completion; fail with its output if it fails."""
    p = subprocess.run(stage_cmd(name, *args), capture_output=True, text=True, timeout=timeout, env=stage_env())
    assert p.returncode == 0, f"{name} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


def stage_env() -> dict:
    # One torch thread per process: the machine is shared, and the runs compared must match.
    return {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def tree_digest(path: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``path`` (the whole output, byte for byte)."""
    return {str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(path.rglob("*")) if f.is_file()}


def extract_imdb(mirror: Path, dest: Path) -> Path:
    """The IMDb sample (train.csv 800 rows, valid.csv 200 rows, classes.txt) under ``dest/imdb_sample``."""
    with tarfile.open(mirror / "imdb_sample" / "imdb_sample.tgz") as tf:
        tf.extractall(dest, filter="data")
    return dest / "imdb_sample"


def imdb_csvs(mirror: Path, root: Path, n_train: int, n_valid: int) -> dict[str, Path]:
    """``root/{train,valid}.csv``: the first ``n_train`` real IMDb training reviews, then ``n_valid`` more."""
    rows = (extract_imdb(mirror, root) / "train.csv").read_bytes().splitlines(keepends=True)
    csvs = {"train": root / "train.csv", "valid": root / "valid.csv"}
    csvs["train"].write_bytes(b"".join(rows[:n_train]))
    csvs["valid"].write_bytes(b"".join(rows[n_train:n_train + n_valid]))
    return csvs


def text_ids(params: Path, csvs: dict[str, Path], run: Path) -> Path:
    """tokenize_text each CSV into ``run/tok/<split>``, then numericalize into ``run/ids`` (returned)."""
    for split, src in csvs.items():
        run_stage("tokenize_text", "--params", params, src, run / "tok" / split)
    run_stage("numericalize", "--params", params, *[a for split in csvs for a in ("--split", f"{split}={run / 'tok' / split}")],
              run / "ids")
    return run / "ids"


def extract_mnist_sample(mirror: Path, dest: Path, per_class: int) -> Path:
    """``per_class`` PNGs per class and split of mnist_sample, laid out as the download stage does."""
    seen: Counter = Counter()
    with tarfile.open(mirror / "mnist_sample" / "mnist_sample.tgz") as tar:
        for m in tar:
            parts = Path(m.name).parts
            if m.isfile() and len(parts) == 4 and seen[parts[1:3]] < per_class:   # mnist_sample/split/cls/x.png
                seen[parts[1:3]] += 1
                m.name = str(Path(*parts[1:]))
                tar.extract(m, dest, filter="data")
    return dest


def make_backbone(path: Path, params: Path, seed: int = 0) -> Path:
    """A seeded, untrained Darknet saved as pretrain_backbone saves it (precompute only needs its shape)."""
    import torch

    from dlpipe.core import params as P
    from dlpipe.io.checkpoint import save_model
    from dlpipe.models.darknet import DarknetConfig, darknet
    from dlpipe.vision.features import BackboneParams

    bb = P.load(BackboneParams, "vision.backbone", params)
    torch.manual_seed(seed)
    cfg = DarknetConfig(in_ch=bb.in_ch, nf=bb.nf, layers=tuple(bb.layers), n_classes=10)
    norm = {"mean": [0.13] * bb.in_ch, "std": [0.31] * bb.in_ch}
    save_model(path, darknet(cfg), dataclasses.asdict(cfg), extra={"normalize": norm})
    return path


def make_cifar_backbone(path: Path, params: Path, seed: int = 0) -> Path:
    """A seeded, untrained Darknet of the tiny CIFAR shape (``cifar.model``), saved as export_backbone saves it
    (the vision tasks' encoder and loss network only need its shape and file format)."""
    import torch

    from dlpipe.core import params as P
    from dlpipe.io.checkpoint import save_model
    from dlpipe.models.darknet import DarknetConfig, darknet
    from dlpipe.tasks.cifar.params import ModelParams

    mp = P.load(ModelParams, "cifar.model", params)
    torch.manual_seed(seed)
    cfg = DarknetConfig(in_ch=3, nf=mp.nf, layers=tuple(mp.layers), n_classes=10)
    save_model(path, darknet(cfg), dataclasses.asdict(cfg),
               extra={"normalize": {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}, "source": "cifar"})
    return path


def build_vision_work(root: Path, mirror: Path, per_class: int) -> dict:
    """Tiny params, ``per_class`` mnist_sample PNGs per class and split, their index and a seeded Darknet."""
    params = tiny_params(root, vision__index__max_per_class=per_class)
    raw = extract_mnist_sample(mirror, root / "raw", per_class=per_class)
    run_stage("index_images", "--params", params, "--format", "folder", raw, root / "index",
              "--metrics", root / "index.json")
    return {"params": params, "raw": raw, "index": root / "index",
            "backbone": make_backbone(root / "backbone.pt", params)}


def precompute_cmd(w: dict, out: Path, metrics: Path) -> list[str]:
    return stage_cmd("precompute", "--params", w["params"], "--dataset", "mnist_sample", w["raw"], w["index"],
                     w["backbone"], out, "--metrics", metrics)


def watch(proc: subprocess.Popen, started: Callable[[], bool], timeout: float = 300) -> float:
    """Wait until ``started()`` (the stage began writing); returns the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started():
            return time.monotonic()
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"stage exited {proc.returncode} before it started writing:\n{out[-3000:]}")
        time.sleep(0.02)
    raise AssertionError("stage never started writing")


def timed_work(cmd: list[str], started: Callable[[], bool], done: Callable[[], bool]) -> float:
    """Run ``cmd`` to completion; seconds from ``started()`` to ``done()`` (the window a kill can hit).

    ``done`` is when the final output appears: interpreter teardown after it is not part of the window.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=stage_env())
    t0 = watch(proc, started)
    t1 = watch(proc, done)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return t1 - t0


def kill_at_random_point(cmd: list[str], started: Callable[[], bool], seed: int, window: float,
                         cleanup: Callable[[], None] | None = None, done: Callable[[], bool] | None = None,
                         attempts: int = 4) -> float:
    """Start ``cmd`` in its own process group; once it writes, SIGKILL the group after a seeded delay.

    The delay is uniform in [0.05, 0.7] x ``window`` (the uninterrupted run's writing time), so the
    kill lands mid-work. A loaded machine can make this run faster than the reference run: if it
    finished before the kill (or was killed while exiting, after ``done()`` became true), ``cleanup()``
    removes what it wrote and the next attempt halves the delay.
    Returns the delay; fails if every attempt finished before its kill.
    """
    delay = random.Random(seed).uniform(0.05, 0.7) * window
    for _ in range(attempts):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=stage_env(),
                                start_new_session=True)
        try:
            watch(proc, started)
            time.sleep(delay)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)   # the stage and any worker processes it forked
            out, _ = proc.communicate(timeout=60)
        finished = proc.returncode == 0 or (done is not None and done())
        if proc.returncode == -signal.SIGKILL and not finished:
            return delay
        assert cleanup is not None and finished, f"exit {proc.returncode} before the kill ({delay:.2f} s):\n{out[-2000:]}"
        cleanup()
        delay /= 2
    raise AssertionError(f"every attempt finished before its kill (last delay {delay:.3f} s)")


def kill_train_then_resume(cmd_for: Callable[[Path], list[str]], tmp: Path, seed: int,
                           model: str = "model.pt") -> tuple[Path, Path]:
    """The training-stage resume check: a reference run in ``tmp/ref``; a run in ``tmp/killed`` SIGKILLed
    after its first epoch checkpoint (no model or metrics under final names), then rerun to completion
    from its ``run/`` dir ("resuming"; the checkpoint gone at the end). ``cmd_for(root)`` is the stage
    command writing ``root/{model, metrics.json, run/}``. Returns (ref, killed) for the caller's comparison."""
    ref, root = tmp / "ref", tmp / "killed"
    window = timed_work(cmd_for(ref), (ref / "run" / "checkpoint.pt").exists, (ref / "metrics.json").exists)
    ckpt = root / "run" / "checkpoint.pt"
    kill_at_random_point(cmd_for(root), ckpt.exists, seed=seed, window=window,
                         cleanup=lambda: shutil.rmtree(root, ignore_errors=True), done=(root / "metrics.json").exists)
    assert ckpt.exists() and not (root / model).exists() and not (root / "metrics.json").exists()
    again = subprocess.run(cmd_for(root), capture_output=True, text=True, timeout=600, env=stage_env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stdout + again.stderr
    assert not ckpt.exists()                                     # finished: the checkpoint is gone
    return ref, root


def stage_fails(cmd: list[str]) -> str:
    """Run a stage command that must fail; its last stderr line (the one clear error)."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=stage_env())
    assert p.returncode != 0, p.stdout[-2000:]
    return p.stderr.strip().splitlines()[-1]


def metrics_without(out: Path, timing: tuple[str, ...]) -> dict:
    """``out/metrics.json`` without its timing keys (what two runs of one stage must agree on)."""
    return {k: v for k, v in json.loads((out / "metrics.json").read_text()).items() if k not in timing}


def tmp_siblings(path: Path) -> list[Path]:
    return [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")] if path.parent.exists() else []
