"""Splitters, freezing, discriminative learning rates and decoupled weight decay."""
import pytest
import torch
from torch import nn

from dlpipe.train import Learner, check_splitter, discriminative, lr_per_group, make_loader, sgd
from test_learner import split_kw
from dlpipe.train.param_groups import even_mults


class Toy(nn.Module):
    """Three layer groups: body conv+BN, middle linear, head linear."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.mid = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.relu(self.mid(self.body(x))))

    def splitter(self):
        return [list(self.body.parameters()), list(self.mid.parameters()), list(self.head.parameters())]


def make_learner(**kw):
    torch.manual_seed(0)
    ds = torch.utils.data.TensorDataset(torch.randn(16, 1, 6, 6), torch.randint(0, 2, (16,)))
    model = Toy()
    return Learner(model, make_loader(ds, 8, True, 0), None, nn.CrossEntropyLoss(),
                   **split_kw({"splitter": Toy.splitter, "progress": False, "device": "cpu", **kw}))


def test_check_splitter_accepts_a_partition():
    m = Toy()
    check_splitter(m, m.splitter())


@pytest.mark.parametrize("make_groups, match", [
    (lambda m: [list(m.body.parameters()), list(m.head.parameters())], "in no group"),
    (lambda m: [list(m.parameters()), list(m.head.parameters())], "is in groups 0 and 1"),
    (lambda m: [list(m.parameters()), []], "group 1 is empty"),
    (lambda m: [list(m.parameters()) + [nn.Parameter(torch.zeros(2))]], "not in the model"),
])
def test_check_splitter_rejects(make_groups, match):
    m = Toy()
    with pytest.raises(ValueError, match=match):
        check_splitter(m, make_groups(m))


def _trainable(learn):
    return [all(p.requires_grad for p in g) for g in learn.groups]


@pytest.mark.parametrize("n, expected", [(-1, [False, False, True]), (1, [False, True, True]),
                                         (0, [True, True, True]), (-2, [False, True, True])])
def test_freeze_to(n, expected):
    learn = make_learner(train_bn=False)
    learn.freeze_to(n)
    assert _trainable(learn) == expected


def test_freeze_unfreeze_and_train_bn():
    learn = make_learner(train_bn=True)
    learn.freeze()
    bn = learn.model.body[1]
    conv = learn.model.body[0]
    assert all(p.requires_grad for p in bn.parameters())          # fastai: BN stays trainable
    assert not any(p.requires_grad for p in conv.parameters())
    assert all(p.requires_grad for p in learn.model.head.parameters())
    learn.unfreeze()
    assert all(p.requires_grad for p in learn.model.parameters())


@pytest.mark.parametrize("lr, expected", [
    (1e-3, [1e-3, 1e-3, 1e-3]),
    (slice(1e-5, 1e-3), [1e-5, 1e-4, 1e-3]),                     # geometric spacing
    (slice(1e-3), [1e-4, 1e-4, 1e-3]),                           # fastai: stop/10 for all but last
    ([1, 2, 3], [1.0, 2.0, 3.0]),
])
def test_lr_per_group(lr, expected):
    assert lr_per_group(lr, 3) == pytest.approx(expected)


def test_discriminative_ulmfit():
    assert discriminative(1e-2, 4) == pytest.approx([1e-2 / 2.6**3, 1e-2 / 2.6**2, 1e-2 / 2.6, 1e-2])
    assert even_mults(1, 100, 3) == pytest.approx([1, 10, 100])
    with pytest.raises(ValueError, match="got 2 learning rates for 3"):
        lr_per_group([1, 2], 3)


def test_discriminative_lrs_land_in_optimizer_groups():
    learn = make_learner()
    learn.fit(1, slice(1e-4, 1e-2), schedule="const")
    got = [g["lr"] for g in learn.opt.param_groups]
    assert got == pytest.approx([1e-4, 1e-3, 1e-2])
    for g, ps in zip(learn.opt.param_groups, learn.groups):
        assert [id(p) for p in g["params"]] == [id(p) for p in ps]


def test_frozen_params_get_no_step_and_no_weight_decay():
    learn = make_learner(opt_func=sgd(momentum=0.9), wd=0.5, train_bn=False)
    learn.freeze()
    before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
    learn.fit(1, 0.1, schedule="const")
    for name, p in learn.model.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        assert changed == name.startswith("head"), name


def test_decoupled_weight_decay_matches_formula():
    """With lr*wd decay and a zero-gradient loss, one SGD step multiplies weights by (1 - lr*wd)."""
    learn = make_learner(opt_func=sgd(momentum=0.0), wd=0.1)
    learn.loss_func = lambda pred, y: (pred * 0).sum()
    w0 = learn.model.head.weight.detach().clone()
    learn.fit(1, 0.5, schedule="const")                          # 2 batches
    assert torch.allclose(learn.model.head.weight, w0 * (1 - 0.5 * 0.1) ** 2, atol=1e-7)
