"""The fit loop: event order, validation weighting, fail-fast, reports, checkpoints, loaders."""
import logging
import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from dlpipe.io.checkpoint import CheckpointMismatch, load_model, save_model
from dlpipe.train import Callback, EpochSampler, Learner, accuracy, make_loader

torch.set_num_threads(1)


def data(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    return TensorDataset(x, (x.sum(1) > 0).long())


OPTIM_KEYS = ("opt_func", "splitter", "wd", "clip", "amp", "train_bn")


def split_kw(kw: dict) -> dict:
    """Learner keywords from a flat dict: Optim fields, RunSettings fields, the rest as they are."""
    from dlpipe.train import Optim, RunSettings
    run_keys = set(RunSettings.__dataclass_fields__)
    out = {k: v for k, v in kw.items() if k not in OPTIM_KEYS and k not in run_keys}
    return {**out, "optim": Optim(**{k: v for k, v in kw.items() if k in OPTIM_KEYS}),
            "run": RunSettings(**{k: v for k, v in kw.items() if k in run_keys})}


def learner(n=12, bs=4, model=None, **kw):
    torch.manual_seed(0)
    ds = data(n)
    kw.setdefault("progress", False)
    return Learner(model or nn.Linear(3, 2), make_loader(ds, bs, True, 0), make_loader(ds, bs, False, 0),
                   nn.CrossEntropyLoss(), **split_kw({"device": "cpu", **kw}))


class Events(Callback):
    def __init__(self):
        self.seen = []

    def __getattr__(self, name):
        if name.startswith(("before_", "after_")):
            return lambda: self.seen.append(name)
        raise AttributeError(name)


def test_event_order():
    cb = Events()
    learner(n=8, bs=4, cbs=[cb]).fit(1, 1e-2)
    batch = ["before_batch", "after_pred", "after_loss", "before_step", "after_step", "after_batch"]
    valid = ["before_validate"] + ["before_batch", "after_pred", "after_loss", "after_batch"] * 2 + ["after_validate"]
    assert cb.seen == ["before_fit", "before_epoch", *batch, *batch, *valid, "after_epoch", "after_fit"]


@pytest.mark.fault("Guardrails", "non-finite loss: FloatingPointError at once, naming epoch, step and phase")
def test_non_finite_loss_fails_fast_naming_epoch_step_phase():
    class Poison(Callback):
        def after_loss(self):
            if self.learn.step == 4:
                self.learn.loss = self.learn.loss * float("nan")
    learn = learner(cbs=[Poison()])
    with pytest.raises(FloatingPointError, match=r"non-finite loss nan at epoch 1, step 4 \(phase 'warm'\)"):
        learn.fit(3, 1e-2, phase="warm")


def test_validate_weights_batches_by_size():
    learn = learner(n=10, bs=4)                       # valid batches of 4, 4, 2
    got = learn.validate()
    x, y = data(10).tensors
    with torch.no_grad():
        pred = learn.model(x)
    assert got["valid_loss"] == pytest.approx(float(nn.functional.cross_entropy(pred, y)), rel=1e-6)
    learn.metrics = [accuracy]
    assert learn.validate()["accuracy"] == pytest.approx(float(accuracy(pred, y)))


def test_get_preds_applies_after_pred():
    class TupleModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x), "raw outputs"          # like an RNN returning (logits, raw, out)

    class Unpack(Callback):
        def after_pred(self):
            self.learn.pred = self.learn.pred[0]
    learn = learner(model=TupleModel(), cbs=[Unpack()])
    learn.fit(1, 1e-2)
    preds, targets = learn.get_preds()
    assert preds.shape == (12, 2) and torch.equal(targets, data(12).tensors[1])


def test_history_and_curves(tmp_path):
    learn = learner(metrics=[accuracy], log_dir=tmp_path)
    learn.fit(2, 1e-2, phase="a")
    learn.fit(1, 1e-2, phase="b", schedule="const")
    lines = (tmp_path / "history.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["phase", "epoch", "step", "train_loss", "valid_loss", "accuracy", "lr", "seconds"]
    rows = [ln.split("\t") for ln in lines[1:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("a", "0", "3"), ("a", "1", "6"), ("b", "0", "9")]
    assert all(math.isfinite(float(v)) for r in rows for v in r[3:])
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_checkpoint_resume_skips_finished_phase(tmp_path):
    learn = learner(run_dir=tmp_path / "run", log_dir=tmp_path / "log", fingerprint="abc")
    learn.fit(2, 1e-2, phase="a")
    w = learn.model.weight.detach().clone()
    history = (tmp_path / "log" / "history.tsv").read_text()
    (tmp_path / "log" / "history.tsv").unlink()       # as `dvc repro` removes outputs before a rerun
    again = learner(run_dir=tmp_path / "run", log_dir=tmp_path / "log", fingerprint="abc")
    again.fit(2, 1e-2, phase="a")                     # finished: returns at once with the saved weights
    assert torch.equal(again.model.weight, w) and again.step == learn.step
    assert (tmp_path / "log" / "history.tsv").read_text() == history


def test_finished_run_is_not_replayed(tmp_path, caplog):
    """After finish() (outputs saved), a rerun with the same fingerprint trains again: DVC reruns a
    stage when code or an input file changed, which the fingerprint cannot see."""
    learn = learner(run_dir=tmp_path / "run", log_dir=tmp_path / "log", fingerprint="abc")
    learn.fit(2, 1e-2, phase="a")
    learn.finish()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    again = learner(run_dir=tmp_path / "run", log_dir=tmp_path / "log", fingerprint="abc")
    with torch.no_grad():
        again.model.weight.add_(1.0)                  # "the code changed": a different starting point
    start = again.model.weight.detach().clone()
    with caplog.at_level(logging.WARNING, logger="dlpipe.train"):
        again.fit(2, 1e-2, phase="a")
    assert "resuming" not in caplog.text and again.step == learn.step   # trained every step itself
    assert not torch.equal(again.model.weight, start) and not torch.equal(again.model.weight, learn.model.weight)


def test_fingerprint_change_starts_fresh(tmp_path, caplog):
    learner(run_dir=tmp_path, fingerprint="old").fit(1, 1e-2, phase="a")
    fresh = learner(run_dir=tmp_path, fingerprint="new")
    with caplog.at_level(logging.WARNING, logger="dlpipe.train"):
        fresh.fit(1, 1e-2, phase="a")
    assert "ignoring checkpoint: fingerprint 'old' differs from this run's 'new'" in caplog.text
    assert fresh.step == 3


def test_checkpoint_of_other_code_is_not_resumed(tmp_path, caplog, monkeypatch):
    """A finished checkpoint left by older dlpipe code (before finish() existed, or a crash) with the
    same fingerprint: the new code trains instead of replaying the old result."""
    from dlpipe.train import resume

    old = learner(run_dir=tmp_path, fingerprint="f")
    monkeypatch.setattr(resume, "code_digest", lambda: "older-code")
    old.fit(1, 1e-2, phase="a")                   # not finished: its checkpoint stays
    monkeypatch.undo()
    again = learner(run_dir=tmp_path, fingerprint="f")
    with caplog.at_level(logging.WARNING, logger="dlpipe.train"):
        again.fit(1, 1e-2, phase="a")
    assert "ignoring checkpoint: written by other dlpipe code (older-code, now " in caplog.text
    assert "resuming" not in caplog.text and again.step == 3
    same = learner(run_dir=tmp_path, fingerprint="f")     # this code's checkpoint: replayed as before
    with caplog.at_level(logging.WARNING, logger="dlpipe.train"):
        same.fit(1, 1e-2, phase="a")
    assert "resuming at step 3" in caplog.text


def test_code_digest_covers_the_package_source():
    from dlpipe.train import resume

    d = resume.code_digest()
    assert len(d) == 16 and d == resume.code_digest()


def test_checkpoint_that_does_not_fit_the_model(tmp_path):
    learner(run_dir=tmp_path, fingerprint="f").fit(1, 1e-2, phase="a")
    other = learner(run_dir=tmp_path, fingerprint="f", model=nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(CheckpointMismatch) as e:
        other.fit(1, 1e-2, phase="a")
    msg = str(e.value)
    assert "missing in checkpoint: 0.weight (2, 3)" in msg and "unexpected in checkpoint: weight (2, 3)" in msg


def test_duplicate_phase_name():
    learn = learner()
    learn.fit(1, 1e-2, phase="a")
    with pytest.raises(ValueError, match="phase name 'a' used twice"):
        learn.fit(1, 1e-2, phase="a")


def test_loader_order_is_a_function_of_seed_and_epoch():
    ds = data(10)
    dl = make_loader(ds, 3, True, seed=5)

    def order(epoch):
        dl.set_epoch(epoch)
        return torch.cat([x for x, _ in dl])
    a = order(1)
    torch.manual_seed(123)                            # global RNG must not matter
    torch.rand(7)
    assert torch.equal(order(1), a) and not torch.equal(order(2), a)


@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (9, 3)])
def test_epoch_sampler_shards_one_permutation(n, world):
    full = list(EpochSampler(n, True, 7))
    shards = [list(EpochSampler(n, True, 7, rank=r, world=world)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1
    assert sorted(set(i for s in shards for i in s)) == list(range(n))
    assert [s[0] for s in shards] == full[:world]      # batch j of all ranks = batch j of one process


@pytest.mark.fault("Bad data", "model file loaded into a model of another shape: CheckpointMismatch naming tensor and both shapes")
def test_save_and_load_model(tmp_path):
    m = nn.Linear(3, 2)
    save_model(tmp_path / "m.pt", m, {"n_in": 3}, {"acc": 0.5})
    m2 = nn.Linear(3, 2)
    blob = load_model(tmp_path / "m.pt", m2)
    assert blob["config"] == {"n_in": 3} and blob["extra"] == {"acc": 0.5}
    assert torch.equal(m.weight, m2.weight)
    with pytest.raises(CheckpointMismatch, match=r"shape mismatch: weight: checkpoint \(2, 3\) vs model \(4, 3\)"):
        load_model(tmp_path / "m.pt", nn.Linear(3, 4))


def test_training_flag_seen_by_before_validate():
    class Seen(Callback):
        def __init__(self):
            self.flags = []

        def before_validate(self):
            self.flags.append(self.learn.training)
    cb = Seen()
    learn = learner(cbs=[cb])
    learn.fit(2, 1e-2)
    learn.validate()
    assert cb.flags == [True, True, False]        # two end-of-epoch validations, then a standalone one
