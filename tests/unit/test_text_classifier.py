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


def test_concat_pool_last_is_the_last_real_token_when_padding_follows():
    out = torch.randn(2, 5, 3)
    pad = torch.tensor([[True, True, False, False, True], [False] * 5])
    pooled = masked_concat_pool(out, pad)
    assert torch.equal(pooled[0, :3], out[0, 3]) and torch.equal(pooled[1, :3], out[1, 4])


@pytest.mark.parametrize("backwards", [False, True])
def test_prediction_does_not_depend_on_batch_neighbours(backwards):
    """With chunk-aligned padding a document is read from a zero state, as if it were alone."""
    from dlpipe.text.samplers import pad_collate

    m = make(bptt=4, max_len=100).eval()
    g = torch.Generator().manual_seed(3)
    docs = [torch.randint(2, 30, (n,), generator=g).numpy() for n in (6, 17, 3, 9)]
    batch, _ = pad_collate([(d, 0) for d in docs], pad_idx=PAD, backwards=backwards, seq_len=4)
    together = m(batch)
    for i, d in enumerate(docs):
        alone, _ = pad_collate([(d, 0)], pad_idx=PAD, backwards=backwards, seq_len=4)
        assert torch.allclose(m(alone)[0], together[i], atol=1e-5), i
    # leading pads read through the LSTM (no chunk alignment) would change the shorter documents
    unaligned, _ = pad_collate([(d, 0) for d in docs], pad_idx=PAD, backwards=backwards)
    assert (m(unaligned) - together).abs().max() > 1e-4


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
