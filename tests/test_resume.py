"""Kill-and-resume: a run SIGKILLed mid-epoch and re-run ends exactly like an uninterrupted run.

This file is also the training script the test runs in a subprocess:
    python tests/test_resume.py RUN_DIR OUT_DIR [--slow]
Two phases (frozen head with STLR, then everything with one-cycle and discriminative lrs), a model
with dropout (so RNG restoration matters) and a stateful callback that scales the loss (so its
state matters).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dlpipe.train import Callback

SCRIPT = Path(__file__).resolve()


class LossScale(Callback):
    """Stateful: scales each training loss by a factor that depends on how many batches it has seen."""

    def __init__(self, sleep: float = 0.0):
        self.count, self.sleep = 0, sleep

    def after_loss(self):
        if self.learn.training:
            self.learn.loss = self.learn.loss * (1 + (self.count % 5) / 10)
            self.count += 1

    def after_batch(self):
        if self.sleep:
            time.sleep(self.sleep)                      # gives the parent time to kill us mid-epoch

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


def train(run_dir: Path, out_dir: Path, sleep: float) -> None:
    from torch import nn
    from torch.utils.data import TensorDataset

    from dlpipe.core.atomic import write_json
    from dlpipe.io.checkpoint import save_model
    from dlpipe.core.runtime import seed_everything
    from dlpipe.train import Learner, Optim, RunSettings, accuracy, make_loader, sgd

    torch.set_num_threads(1)
    seed_everything(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 8, generator=g)
    y = (x[:, :4].sum(1) > x[:, 4:].sum(1)).long()
    train_dl = make_loader(TensorDataset(x[:160], y[:160]), 10, shuffle=True, seed=3)
    valid_dl = make_loader(TensorDataset(x[160:], y[160:]), 20, shuffle=False, seed=3)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 32), nn.ReLU(),
                          nn.Dropout(0.3), nn.Linear(32, 2))
    splitter = lambda m: [list(m[0].parameters()), list(m[3].parameters()), list(m[6].parameters())]  # noqa: E731
    learn = Learner(model, train_dl, valid_dl, nn.CrossEntropyLoss(),
                    optim=Optim(opt_func=sgd(0.9), splitter=splitter, wd=0.01, clip=1.0),
                    metrics=[accuracy], cbs=[LossScale(sleep)],
                    run=RunSettings(device="cpu", seed=3, run_dir=run_dir, log_dir=out_dir, fingerprint="fp-1",
                                    checkpoint_every=5, progress=False))
    learn.freeze()
    learn.fit(2, 0.05, schedule="stlr", phase="head")
    learn.unfreeze()
    learn.fit(3, slice(0.005, 0.05), schedule="one_cycle", phase="all", pct_start=0.25)
    metrics = learn.validate()
    save_model(out_dir / "model.pt", model, {"kind": "mlp"})
    write_json(out_dir / "metrics.json", metrics)


def _run(run_dir, out_dir, sleep=0.0):
    return subprocess.Popen([sys.executable, str(SCRIPT), str(run_dir), str(out_dir), str(sleep)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_mid_epoch(proc, ckpt: Path, phase: str, min_step: int) -> dict:
    """SIGKILL ``proc`` once a checkpoint in ``phase``, mid-epoch, at step >= min_step, exists."""
    last = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and ckpt.stat().st_mtime_ns != last:
            last = ckpt.stat().st_mtime_ns
            ck = torch.load(ckpt, weights_only=False)
            pos = ck["pos"]
            if pos and pos["phase"] == phase and pos["iter"] > 0 and ck["step"] >= min_step:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return ck
        time.sleep(0.01)
    raise AssertionError(f"never saw a mid-epoch checkpoint in phase {phase}: {proc.communicate()[0]}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """Outputs of one uninterrupted run."""
    root = tmp_path_factory.mktemp("ref")
    ref = _run(root / "run", root / "out")
    out, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0, out
    return root / "out"


@pytest.mark.slow
@pytest.mark.parametrize("phase, min_step", [("head", 8), ("all", 45)])
@pytest.mark.fault("Faults", "training SIGKILLed mid-epoch: rerun resumes from the checkpoint to identical weights, metrics and history")
def test_killed_run_resumes_to_identical_weights(tmp_path, reference, phase, min_step):

    proc = _run(tmp_path / "run", tmp_path / "out", sleep=0.02)
    ck = _kill_mid_epoch(proc, tmp_path / "run" / "checkpoint.pt", phase, min_step)
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "out" / "model.pt").exists()
    assert ck["step"] % 5 == 0 and ck["finished_phases"] == (["head"] if phase == "all" else [])

    again = _run(tmp_path / "run", tmp_path / "out")
    log, _ = again.communicate(timeout=300)
    assert again.returncode == 0, log
    assert "resuming at step" in log

    a = torch.load(reference / "model.pt")["model"]
    b = torch.load(tmp_path / "out" / "model.pt")["model"]
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=0), name
    ma = json.loads((reference / "metrics.json").read_text())
    mb = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert ma == pytest.approx(mb, abs=1e-6)
    drop_seconds = lambda p: [ln.rsplit("\t", 1)[0] for ln in p.read_text().splitlines()]
    assert drop_seconds(reference / "history.tsv") == drop_seconds(tmp_path / "out" / "history.tsv")


if __name__ == "__main__":
    train(Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]))
