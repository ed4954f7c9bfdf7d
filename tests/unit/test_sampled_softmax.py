"""Sampled softmax: with every word sampled it is the exact cross-entropy's estimate on a hand-built
case; it trains an LM on a periodic stream; evaluation still uses the exact softmax."""
import math

import numpy as np
import pytest
import torch

from dlpipe.models.awd_lstm import AWDLSTMConfig, AWDLSTMLM
from dlpipe.text.callbacks import lm_loss
from dlpipe.text.sampled import SampledSoftmaxLoss, unigram_q


def test_unigram_q_is_smoothed_and_normalised():
    q = unigram_q(np.array([2, 2, 2, 3]), 4)
    assert q.sum().item() == pytest.approx(1.0)
    assert q[2] > q[3] > q[0] == q[1] > 0           # counts 3, 1, 0, 0 (+1 smoothing), ^0.75


def test_loss_matches_its_definition_and_falls_back_to_exact_in_eval():
    torch.manual_seed(0)
    model = AWDLSTMLM(AWDLSTMConfig.make(6, 4, 8, 1, 0.0))
    q = torch.full((6,), 1 / 6)
    loss = SampledSoftmaxLoss(model, q, k=3)
    h, y = torch.randn(1, 2, 4), torch.tensor([[1, 4]])
    model.train()
    torch.manual_seed(5)
    got = loss(h, y)
    torch.manual_seed(5)
    neg = torch.multinomial(q, 3, replacement=True)
    W, b, lkq = model.decoder.weight, model.decoder.bias, math.log(3 / 6)
    want = 0.0
    for i, t in enumerate(y[0].tolist()):
        true = (h[0, i] @ W[t] + b[t]).item() - lkq
        noise = [(h[0, i] @ W[j] + b[j]).item() - lkq for j in neg.tolist() if j != t]
        want += -true + math.log(sum(math.exp(v) for v in [true, *noise]))
    assert got.item() == pytest.approx(want / 2, rel=1e-5)
    model.eval()
    logits = torch.randn(1, 2, 6)
    assert loss(logits, y).item() == pytest.approx(lm_loss(logits, y).item())


def test_sampled_training_learns_a_periodic_stream():
    from dlpipe.text.callbacks import RNNCallback
    from dlpipe.text.lm_data import LMLoader
    from dlpipe.train import Learner, Optim, RunSettings, accuracy

    stream = torch.arange(2, 40).repeat(60).numpy()
    torch.manual_seed(0)
    model = AWDLSTMLM(AWDLSTMConfig.make(40, 16, 32, 2, 0.1))
    loss = SampledSoftmaxLoss(model, unigram_q(stream, 40), k=160)   # a small vocabulary needs k >> vocab
    learn = Learner(model, LMLoader(stream, 8, 10, seed=0), LMLoader(stream[:600], 8, 10, seed=0, random_bptt=False),
                    loss, optim=Optim(clip=0.4), metrics=[accuracy], cbs=[RNNCallback()],
                    run=RunSettings(device="cpu", progress=False))
    before = learn.validate()["valid_loss"]
    learn.fit(8, 3e-2, schedule="one_cycle")
    after = learn.validate()                           # exact-softmax validation of a sampled-trained LM
    assert after["accuracy"] > 0.7 and after["valid_loss"] < before / 3   # chance: 1/38
