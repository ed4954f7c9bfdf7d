"""DDP: 2 CPU processes (torchrun, gloo) match 1 process at the same (global) batch of 16: 8 rows per rank.

This file is also the training script:  python tests/test_ddp.py OUT_DIR BS  (or under torchrun).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve()


def train(out_dir: Path, bs: int) -> None:
    from torch import nn
    from torch.utils.data import TensorDataset

    from dlpipe.core.atomic import write_json
    from dlpipe.io.checkpoint import save_model
    from dlpipe.core.runtime import seed_everything
    from dlpipe.train import Learner, Optim, RunSettings, accuracy, init_from_env, is_main, make_loader

    torch.set_num_threads(1)
    init_from_env()
    seed_everything(0)                                   # same initial weights on every rank
    g = torch.Generator().manual_seed(1)
    x = torch.randn(192, 6, generator=g)
    y = (x[:, :3].sum(1) > x[:, 3:].sum(1)).long()
    train_dl = make_loader(TensorDataset(x[:128], y[:128]), bs, shuffle=True, seed=3)
    valid_dl = make_loader(TensorDataset(x[128:], y[128:]), bs, shuffle=False, seed=3)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))   # no dropout: deterministic
    learn = Learner(model, train_dl, valid_dl, nn.CrossEntropyLoss(), optim=Optim(wd=0.01, clip=1.0), metrics=[accuracy],
                    run=RunSettings(device="cpu", run_dir=out_dir / "run", log_dir=out_dir, fingerprint="ddp",
                                    checkpoint_every=3, progress=False))
    learn.fit(2, 3e-2, schedule="one_cycle", phase="all")
    metrics = learn.validate()
    if is_main():
        save_model(out_dir / "model.pt", model, {})
        write_json(out_dir / "metrics.json", metrics)


def _check(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.mark.slow
@pytest.mark.ddp
def test_two_process_ddp_matches_one_process(tmp_path):
    from dlpipe.train import ddp_launch_cmd

    _check([sys.executable, str(SCRIPT), str(tmp_path / "one"), "16"])
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
    cmd = ddp_launch_cmd(2, str(SCRIPT), [str(tmp_path / "two"), "16"])
    _check(cmd, env)

    a = torch.load(tmp_path / "one" / "model.pt")["model"]
    b = torch.load(tmp_path / "two" / "model.pt")["model"]
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5, rtol=0), (name, (a[name] - b[name]).abs().max())
    ma = json.loads((tmp_path / "one" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert ma == pytest.approx(mb, abs=1e-5)
    # rank 0 alone wrote the reports and the checkpoint
    assert (tmp_path / "two" / "history.tsv").exists() and (tmp_path / "two" / "run" / "checkpoint.pt").exists()
    rows = (tmp_path / "two" / "history.tsv").read_text().splitlines()
    assert len(rows) == 3


def test_ddp_launch_cmd():
    from dlpipe.train import ddp_launch_cmd

    single = ddp_launch_cmd(4, "stages/train.py", ["--params", "params.yaml"])
    assert single[1:] == ["-m", "torch.distributed.run", "--nproc_per_node=4", "--standalone",
                          "stages/train.py", "--params", "params.yaml"]
    multi = ddp_launch_cmd(8, "s.py", nnodes=2, node_rank=1, rdzv_endpoint="10.0.0.1:29500")
    assert "--nnodes=2" in multi and "--node_rank=1" in multi and "--rdzv_endpoint=10.0.0.1:29500" in multi
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        ddp_launch_cmd(8, "s.py", nnodes=2)


if __name__ == "__main__":
    train(Path(sys.argv[1]), int(sys.argv[2]))
