"""LR finder on a tiny regression: the loss falls then diverges, the suggestion is in the falling part,
and model, optimizer and RNG are left exactly as they were."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dlpipe.train import Learner, Optim, RunSettings, make_loader, sgd
from dlpipe.train.lr_find import suggest

torch.set_num_threads(1)


def regression_learner(tmp_path):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 4, generator=g)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(256, 1, generator=g)
    dl = make_loader(TensorDataset(x, y), 16, True, seed=0)
    return Learner(nn.Linear(4, 1), dl, None, nn.MSELoss(), optim=Optim(opt_func=sgd(momentum=0.0)),
                   run=RunSettings(device="cpu", log_dir=tmp_path, progress=False))


def test_lr_find_falls_then_diverges_and_restores_state(tmp_path):
    learn = regression_learner(tmp_path)
    w0 = {k: v.clone() for k, v in learn.model.state_dict().items()}
    opt0 = learn.opt.state_dict()["param_groups"][0]["lr"]
    rng0 = torch.get_rng_state()

    lr = learn.lr_find(start=1e-4, end=10, n=200)

    res = learn.lr_find_result
    lrs, losses = np.array(res["lrs"]), np.array(res["losses"])
    i_min = int(losses.argmin())
    assert losses[i_min] < 0.3 * losses[0]                      # it learned...
    assert losses[-1] > 4 * losses[i_min] and len(lrs) < 200      # ...then diverged and the sweep stopped
    i = int(np.searchsorted(lrs, lr))
    assert lr == pytest.approx(lrs[i_min] / 10)
    # in the falling region: clearly below the start and still falling over the next tenth of the sweep
    assert i < i_min and losses[i] < 0.9 * losses[0] and losses[i + 20] < 0.9 * losses[i]
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, w0[k])
    assert learn.opt.state_dict()["param_groups"][0]["lr"] == opt0
    assert torch.equal(torch.get_rng_state(), rng0)
    assert (tmp_path / "lr_find.png").stat().st_size > 1000
    assert not (tmp_path / "history.tsv").exists()                # the sweep is not an epoch of training


@pytest.mark.parametrize("losses, steepest", [
    ([9, 9, 9, 9, 8, 7, 3, 1, 0.8, 0.5, 2], 6),   # biggest drop over a +-1 window: 7 -> 1 around index 6
    ([5.0, 1.0, 3.0], None),                         # too short for a slope: both fall back to min/10
])
def test_suggest(losses, steepest):
    lrs = [10.0 ** i for i in range(len(losses))]
    i_min = int(np.argmin(losses))
    lr, steep = suggest(lrs, losses, window=0.1)
    assert lr == pytest.approx(lrs[i_min] / 10)
    assert steep == pytest.approx(lr if steepest is None else lrs[steepest])
