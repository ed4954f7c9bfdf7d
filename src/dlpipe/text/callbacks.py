"""RNN callbacks for the one Learner: hidden-state carry/reset, output unpacking, AR/TAR.

An AWD-LSTM LM returns ``(logits, raw_outputs, outputs)``. :class:`RNNCallback` keeps the logits
as ``learn.pred`` (so ordinary losses and metrics apply) and parks the per-layer activations on
the learner for :class:`RNNRegularizer`. The hidden state lives on the model and is carried
batch to batch (truncated BPTT); it is reset at the start of each epoch and of validation, and
saved in checkpoints so a resumed run continues with exactly the state it stopped with.
"""
from __future__ import annotations

import torch

from dlpipe.train import Callback


def _rnn_encoder(model):
    """The module that holds ``.hidden`` (an AWDLSTMEncoder) inside an LM or classifier."""
    enc = getattr(model, "encoder", None)
    while enc is not None and not hasattr(enc, "hidden"):
        enc = getattr(enc, "encoder", None)
    if enc is None:
        raise TypeError(f"{type(model).__name__}: no RNN encoder with a carried hidden state")
    return enc


class RNNCallback(Callback):
    """Reset the carried hidden state per epoch/validation; unpack ``(logits, raw, outputs)``."""

    order = -10

    def before_epoch(self):
        self.learn.model.reset()

    def before_validate(self):
        self._train_hidden = _rnn_encoder(self.learn.model).hidden
        self.learn.model.reset()

    def after_validate(self):
        # validation may run mid-phase (e.g. an explicit validate()); give training its state back
        _rnn_encoder(self.learn.model).hidden = self._train_hidden

    def after_pred(self):
        pred = self.learn.pred
        if isinstance(pred, tuple):
            self.learn.pred, self.learn.raw_outputs, self.learn.outputs = pred

    def state_dict(self) -> dict:
        hidden = _rnn_encoder(self.learn.model).hidden if self.learn is not None else None
        return {"hidden": None if hidden is None else [[t.detach().cpu() for t in h] for h in hidden]}

    def load_state_dict(self, state: dict) -> None:
        hidden = state.get("hidden")
        dev = self.learn.device
        _rnn_encoder(self.learn.model).hidden = (
            None if hidden is None else [tuple(t.to(dev) for t in h) for h in hidden])


class RNNRegularizer(Callback):
    """AR (``alpha``·mean(out²) on the dropped last-layer output) and TAR (``beta``·mean(Δh²) over
    time on the raw last-layer output), added to the training loss (Merity et al. 2017)."""

    order = -5

    def __init__(self, alpha: float, beta: float):
        self.alpha, self.beta = alpha, beta

    def after_loss(self):
        learn = self.learn
        if not learn.training or not hasattr(learn, "outputs"):
            return
        if self.alpha:
            learn.loss = learn.loss + self.alpha * learn.outputs[-1].float().pow(2).mean()
        if self.beta:
            raw = learn.raw_outputs[-1]  # (bs, sl, emb)
            if raw.size(1) > 1:
                learn.loss = learn.loss + self.beta * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()


def lm_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (bs, sl, vocab) logits against (bs, sl) next tokens."""
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1))
