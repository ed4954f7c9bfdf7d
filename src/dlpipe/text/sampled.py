"""Sampled softmax for the tied AWD-LSTM decoder (Jean et al. 2015; TensorFlow's sampled_softmax_loss):
a training-time estimate of the full softmax cross-entropy from the true token and K negatives.

The decoder is the LM's most expensive layer on a CPU (a (bs·sl, emb) × (emb, vocab) product and its
gradient); scoring K ≪ vocab columns per step makes training ~2× faster at vocab 8-15k (bench/). The
negatives are drawn with replacement from q ∝ unigram^0.75 through torch's global RNG (so a resumed
run draws the same ones), each logit corrected by −log(K·q(w)) and accidental hits masked. Validation
and every perplexity use the exact softmax.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dlpipe.text.callbacks import lm_loss


def unigram_q(ids: np.ndarray, vocab: int, power: float = 0.75) -> torch.Tensor:
    """Sampling distribution over the vocabulary: (count + 1)^power, normalised."""
    c = np.bincount(np.asarray(ids, dtype=np.int64), minlength=vocab)[:vocab].astype(np.float64) + 1.0
    q = c ** power
    return torch.tensor(q / q.sum(), dtype=torch.float32)


class SampledSoftmaxLoss:
    """``loss(pred, target)``: sampled softmax when ``pred`` is hidden states (the model's training
    forward), the exact cross-entropy when it is logits (evaluation)."""

    __name__ = "sampled_softmax_loss"

    def __init__(self, model, q: torch.Tensor, k: int):
        self.model, self.k = model, k
        self.q = q
        self.log_kq = torch.log(q * k)
        model.sampled = True

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not (self.model.sampled and self.model.training):
            return lm_loss(pred, target)                                      # logits: the exact softmax
        dec = self.model.decoder
        h, y = pred.reshape(-1, pred.size(-1)), target.reshape(-1)           # (n, emb), (n,)
        q, log_kq = self.q.to(h.device), self.log_kq.to(h.device)
        neg = torch.multinomial(q, self.k, replacement=True)                  # (k,) shared by the batch
        true = (h * dec.weight[y]).sum(-1) + dec.bias[y] - log_kq[y]          # (n,)
        noise = F.linear(h, dec.weight[neg], dec.bias[neg]) - log_kq[neg]     # (n, k)
        noise = noise.masked_fill(neg.unsqueeze(0) == y.unsqueeze(1), float("-inf"))   # accidental hits
        logits = torch.cat([true.unsqueeze(1), noise], 1).float()             # the true token is class 0
        return F.cross_entropy(logits, torch.zeros_like(y))
