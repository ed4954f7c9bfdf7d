"""ULMFiT classifier: concat pooling ignores padding, MultiBatchEncoder truncates gradients."""
import pytest
import torch

from dlpipe.models.awd_lstm import AWDLSTMConfig
from dlpipe.models.text_classifier import TextClassifier, classifier_splitter, masked_concat_pool
from dlpipe.train import check_splitter

PAD = 1


def make(bptt=4, max_len=8, drop_mult=0.0) -> TextClassifier:
    torch.manual_seed(0)
    cfg = AWDLSTMConfig.make(30, 6, 10, 2, drop_mult)
    return TextClassifier(cfg, 2, [5], [0.0, 0.0], bptt, max_len)


def test_concat_pool_ignores_pad_positions():
    out = torch.randn(2, 5, 3)
    pad = torch.tensor([[True, True, False, False, False], [False] * 5])
    pooled = masked_concat_pool(out, pad)
    assert pooled.shape == (2, 9)
    real = out[0, 2:]
    assert torch.allclose(pooled[0], torch.cat([real[-1], real.max(0).values, real.mean(0)]))
    out2 = out.clone()
    out2[0, :2] = 1e6                            # whatever sits at pad positions
    assert torch.allclose(masked_concat_pool(out2, pad), pooled)


def test_padding_first_does_not_change_prediction_much_in_eval():
    """A document alone and the same document padded in a batch pool the same real positions."""
    m = make().eval()
    doc = torch.randint(2, 30, (1, 6))
    padded = torch.cat([torch.full((1, 3), PAD), doc], 1)
    pooled_pad = masked_concat_pool(*m.encoder(padded))
    assert pooled_pad.shape == (1, 18) and torch.isfinite(pooled_pad).all()


def test_forward_shape_and_splitter():
    m = make()
    assert m(torch.randint(2, 30, (3, 11))).shape == (3, 2)
    groups = classifier_splitter(m)
    check_splitter(m, groups)
    assert len(groups) == 4                       # embedding, rnn0, rnn1, head


def test_multibatch_keeps_gradients_only_for_last_max_len_tokens():
    m = make(bptt=4, max_len=4).train()
    early = torch.tensor([[2, 3, 4, 5, 6, 7, 8, 9]] * 2)   # chunks 0-1: run, never backpropagated
    late = torch.tensor([[20, 21, 22, 23], [23, 22, 21, 20]])  # chunk 2: the last max_len tokens
    logits = m(torch.cat([early, late], 1))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    g = m.encoder.encoder.encoder.weight.grad
    assert g[early.flatten()].abs().sum() == 0
    assert (g[late.flatten()].abs().sum(1) > 0).all()


def test_frozen_encoder_runs_without_graph():
    m = make()
    for p in m.encoder.parameters():
        p.requires_grad_(False)
    out, pad = m.encoder(torch.randint(2, 30, (2, 9)))
    assert not out.requires_grad
    m(torch.randint(2, 30, (2, 9))).pow(2).sum().backward()
    assert all(p.grad is not None for p in m.head.parameters())


def test_head_needs_one_dropout_per_linear():
    with pytest.raises(ValueError, match="2 linear layers need as many dropouts, got 1"):
        TextClassifier(AWDLSTMConfig.make(30, 6, 10, 2, 0.0), 2, [5], [0.1], 4, 8)
