"""Heads on precomputed features, the body+head classifier, and evaluation pictures."""
import numpy as np
import pytest
import torch
from torch import nn

from dlpipe.models.darknet import DarknetConfig, cut, darknet
from dlpipe.train.learner import Learner, Optim, RunSettings
from dlpipe.train.metrics import accuracy
from dlpipe.train.param_groups import check_splitter
from dlpipe.vision.feature_data import ChunkedFeatureLoader
from dlpipe.vision.heads import Classifier, HeadConfig, head_from_state, head_state, make_head, split_body
from dlpipe.plots import confusion as confusion_matrix
from dlpipe.plots import plot_confusion
from dlpipe.vision.plots import plot_prediction_grid


def cfg(**kw):
    base = dict(n_in=8, n_out=3, kind="mlp", n_hidden=16, ps=0.1, pool="concat")
    return HeadConfig(**{**base, **kw})


@pytest.mark.parametrize("kind,pool,row_shape", [
    ("linear", "concat", (8,)), ("mlp", "concat", (8, 4, 4)), ("linear", "avg", (8, 2, 3)), ("mlp", "avg", (8,)),
])
def test_head_output_shape(kind, pool, row_shape):
    head = make_head(cfg(kind=kind, pool=pool), row_shape).eval()
    assert head(torch.randn(5, *row_shape)).shape == (5, 3)


def test_head_rejects_wrong_feature_width():
    with pytest.raises(ValueError, match="n_in=8"):
        make_head(cfg(), (16, 4, 4))


def test_head_state_roundtrip():
    head = make_head(cfg(), (8, 2, 2))
    again = head_from_state(head_state(head))
    again.load_state_dict(head.state_dict())
    x = torch.randn(3, 8, 2, 2)
    assert torch.equal(head.eval()(x), again.eval()(x))


@pytest.mark.parametrize("layer,n_groups", [("pool", 3), ("group2", 3), ("group0", 3), ("stem", 2)])
def test_classifier_splitter_covers_backbone_and_head(layer, n_groups):
    net = darknet(DarknetConfig(in_ch=1, nf=4, layers=(1, 1, 1), n_classes=10))
    body = cut(net, layer)
    with torch.no_grad():
        row_shape = tuple(body.eval()(torch.zeros(1, 1, 28, 28)).shape[1:])
    model = Classifier(body, make_head(cfg(n_in=row_shape[0]), row_shape), split_body)
    groups = model.splitter(model)
    check_splitter(model, groups)
    assert len(groups) == n_groups
    assert groups[-1] == list(model.head.parameters())
    assert model.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 3)


def separable(n, seed):
    """Three Gaussian blobs in 8-d feature space: linearly separable classes."""
    g = np.random.default_rng(seed)
    y = g.integers(0, 3, n)
    centers = g.normal(0, 3, (3, 8)).astype(np.float32)
    return centers[y] + g.normal(0, 0.5, (n, 8)).astype(np.float32), y


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_head_training_loss_falls_on_separable_features(tmp_path, kind):
    x, y = separable(600, seed=0)
    train = ChunkedFeatureLoader(x[:480], y[:480], bs=32, chunk_rows=64, seed=0)
    valid = ChunkedFeatureLoader(x[480:], y[480:], bs=64, shuffle=False)
    torch.manual_seed(0)
    head = make_head(cfg(kind=kind), (8,))
    learn = Learner(head, train, valid, nn.CrossEntropyLoss(), optim=Optim(splitter=head.splitter), metrics=[accuracy],
                    run=RunSettings(device="cpu", seed=0, log_dir=tmp_path, progress=False))
    before = learn.validate()
    learn.fit(3, lr=1e-2, schedule="one_cycle", phase="head")
    after = learn.validate()
    assert after["valid_loss"] < 0.5 * before["valid_loss"]
    assert after["accuracy"] > 0.95
    assert (tmp_path / "history.tsv").read_text().count("\n") == 4   # header + 3 epochs


def test_confusion_matrix_counts():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.sum() == 6 and np.trace(cm) == 4


def test_confusion_matrix_rejects_bad_ids():
    with pytest.raises(ValueError, match="row 1"):
        confusion_matrix([0, 3], [0, 0], 3)


def test_pictures_are_written(tmp_path):
    plot_confusion(np.array([[5, 1], [0, 4]]), ["3", "7"], tmp_path / "cm.png")
    imgs = [np.random.default_rng(i).random((1, 28, 28)) for i in range(4)]
    plot_prediction_grid(imgs, ["3", "7", "7", "3"], ["3", "7", "3", "3"], tmp_path / "grid.png", ncols=3)
    for name in ("cm.png", "grid.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grid_picks_mixes_mistakes_and_hits():
    from dlpipe.tasks.transfer.evaluate import grid_picks
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    pred = np.array([1, 0, 0, 0, 0, 1, 1, 1])            # two mistakes: rows 0 and 4
    pick = grid_picks(y, pred, n_show=6, seed=0)
    assert len(pick) == 6 and {0, 4} <= set(pick.tolist())
    assert grid_picks(y, y, n_show=20, seed=0).tolist() == list(range(8))   # fewer images than slots


def test_transfer_summary(tmp_path):
    import json
    from dlpipe.tasks.transfer.summary import transfer_summary
    def put(name, obj):
        (tmp_path / name).write_text(json.dumps(obj))
        return tmp_path / name
    evals = {k: put(f"e_{k}", {"accuracy": a}) for k, a in
             {"head_full": 0.9, "finetune_full": 0.95, "scratch_full": 0.93, "finetune_low": 0.9, "scratch_low": 0.6}.items()}
    trains = {"head_full": put("t1", {"epoch_seconds": 0.5, "n_train": 100}),
              "finetune_full": put("t2", {"epoch_seconds": 10.0, "n_train": 100})}
    s = transfer_summary(evals=evals, trains=trains)
    assert s["finetune_over_head_epoch_time"] == 20.0
    assert s["pretrained_minus_scratch_low"] == pytest.approx(0.3)
    assert s["accuracy"]["head_full"] == 0.9
