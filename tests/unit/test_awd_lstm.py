"""AWD-LSTM: shapes, the five dropouts, hidden-state carry, tied weights, splitter."""
import warnings

import pytest
import torch

from dlpipe.models.awd_lstm import (AWDLSTMConfig, AWDLSTMLM, embedding_dropout, lm_splitter,
                                    locked_dropout)
from dlpipe.train import check_splitter

V, E, H = 50, 8, 12


def make(n_layers=3, drop_mult=1.0, **over) -> AWDLSTMLM:
    torch.manual_seed(0)
    cfg = AWDLSTMConfig.make(V, E, H, n_layers, drop_mult)
    if over:
        cfg = AWDLSTMConfig(**{**cfg.to_dict(), **over})
    return AWDLSTMLM(cfg)


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_forward_shapes(n_layers):
    m = make(n_layers)
    x = torch.randint(2, V, (4, 7))
    logits, raw, outs = m(x)
    assert logits.shape == (4, 7, V)
    sizes = [H] * (n_layers - 1) + [E]
    assert [r.shape for r in raw] == [(4, 7, s) for s in sizes]
    assert [o.shape for o in outs] == [(4, 7, s) for s in sizes]
    assert [h[0].shape for h in m.encoder.hidden] == [(1, 4, s) for s in sizes]


def test_weights_tied_and_single_parameter():
    m = make()
    assert m.decoder.weight is m.encoder.encoder.weight
    names = [n for n, _ in m.named_parameters()]
    assert "decoder.weight" not in names            # listed once, as the embedding


def test_eval_deterministic_train_stochastic_and_no_warnings():
    m = make()
    x = torch.randint(2, V, (3, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.eval()
        m.reset(); a = m(x)[0]
        m.reset(); b = m(x)[0]
        m.train()
        m.reset(); c = m(x)[0]
        m.reset(); d = m(x)[0]
    assert torch.equal(a, b)
    assert not torch.allclose(c, d)


def test_weight_drop_only_changes_hidden_to_hidden_in_training():
    """With only weight dropout on, training forwards differ; the raw parameter never changes."""
    m = make(hidden_p=0.0, input_p=0.0, embed_p=0.0, output_p=0.0, weight_p=0.5)
    raw = m.encoder.rnns[0].weight_hh_raw.detach().clone()
    x = torch.randint(2, V, (3, 5))
    m.train()
    m.reset(); c = m(x)[0]
    m.reset(); d = m(x)[0]
    assert not torch.allclose(c, d)
    assert torch.equal(raw, m.encoder.rnns[0].weight_hh_raw)
    m.eval()
    m.reset(); e = m(x)[0]
    m2 = make(weight_p=0.0, hidden_p=0.0, input_p=0.0, embed_p=0.0, output_p=0.0).eval()
    m2.load_state_dict(m.state_dict())
    m2.reset()
    assert torch.allclose(e, m2(x)[0])            # eval uses the raw weights


def test_embedding_dropout_drops_whole_words():
    emb = torch.nn.Embedding(20, 6, padding_idx=1)
    torch.nn.init.normal_(emb.weight)
    ids = torch.arange(20).repeat(3, 1)          # every word three times
    torch.manual_seed(1)
    out = embedding_dropout(emb, ids, 0.5, True)  # (3, 20, 6)
    zero = (out == 0).all(-1)                    # (3, 20) word vector fully dropped
    assert zero.any() and (~zero).any()
    assert (zero == zero[0]).all()               # the same words dropped at every occurrence
    kept = ~zero[0]
    kept[1] = False                              # pad row is zero anyway
    assert torch.allclose(out[0][kept], emb.weight[kept] * 2)   # survivors scaled by 1/(1-p)
    assert torch.equal(embedding_dropout(emb, ids, 0.5, False), emb(ids))


def test_locked_dropout_mask_constant_over_time():
    x = torch.ones(4, 9, 16)
    torch.manual_seed(0)
    y = locked_dropout(x, 0.5, True)
    assert (y == y[:, :1]).all()                 # same mask at every time step
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(locked_dropout(x, 0.5, False), x)


def test_hidden_state_carried_and_detached():
    m = make().eval()
    x = torch.randint(2, V, (2, 6))
    m.reset(); full = m(x)[0]
    m.reset(); m(x[:, :3]); second = m(x[:, 3:])[0]
    assert torch.allclose(full[:, 3:], second, atol=1e-6)
    assert all(not t.requires_grad for h in m.encoder.hidden for t in h)
    m(x[:1])                                     # a new batch size restarts from zeros, no error


def test_splitter_covers_every_parameter_once():
    m = make()
    groups = lm_splitter(m)
    check_splitter(m, groups)
    assert len(groups) == 4
    assert groups[-1][0] is m.encoder.encoder.weight and groups[-1][1] is m.decoder.bias


def test_gradients_flow_to_every_parameter():
    m = make()
    logits, _, _ = m(torch.randint(2, V, (2, 5)))
    logits.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_learner_with_rnn_callbacks_learns_a_periodic_stream(tmp_path):
    """The LM trains through the one Learner: hidden carry, unpacking, AR/TAR, exact callback state."""
    from dlpipe.text.callbacks import RNNCallback, RNNRegularizer, lm_loss
    from dlpipe.text.lm_data import LMLoader
    from dlpipe.train import Learner, Optim, RunSettings, accuracy

    stream = torch.arange(2, 12).repeat(120).numpy()            # 2 3 ... 11 2 3 ...: next token is certain
    torch.manual_seed(0)
    model = AWDLSTMLM(AWDLSTMConfig.make(12, 8, 16, 2, 0.1))
    train, valid = LMLoader(stream, 8, 10, seed=0), LMLoader(stream[:400], 8, 10, seed=0, random_bptt=False)
    rnn = RNNCallback()
    learn = Learner(model, train, valid, lm_loss, optim=Optim(splitter=lm_splitter, clip=0.4), metrics=[accuracy],
                    cbs=[rnn, RNNRegularizer(2.0, 1.0)], run=RunSettings(device="cpu", progress=False))
    learn.fit(4, 3e-2, schedule="one_cycle")
    assert learn.validate()["accuracy"] > 0.9
    state = rnn.state_dict()
    assert [tuple(h[0].shape) for h in state["hidden"]] == [(1, 8, 16), (1, 8, 8)]
    model.reset()
    rnn.load_state_dict(state)
    assert torch.equal(model.encoder.hidden[0][0], state["hidden"][0][0])
