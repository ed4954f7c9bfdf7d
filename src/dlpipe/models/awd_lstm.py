"""AWD-LSTM (Merity et al. 2017) as used by ULMFiT: an encoder, a tied decoder and a splitter.

Five dropouts, each at a fixed ratio scaled by one ``drop_mult`` (lesson 10):

    ids (bs, sl) ──embedding dropout (whole rows of the vocab)──▶ (bs, sl, emb)
        ──input dropout (locked)──▶ LSTM_0 ──hidden dropout──▶ LSTM_1 ... LSTM_{n-1}
        ──output dropout (locked)──▶ decoder (weight = embedding weight) ──▶ (bs, sl, vocab)

Each LSTM layer's hidden-to-hidden matrix is DropConnect-ed ("weight dropout") afresh on every
training forward; the raw matrix is the Parameter, so ``state_dict``/DDP see ordinary tensors.
The hidden state is carried across batches (detached: truncated BPTT) until :meth:`reset`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Dropout ratios (output, hidden, input, embed, weight) of fastai's AWD-LSTM configs, which are
# the lesson's `np.array([0.25, 0.1, 0.2, 0.02, 0.15])` in fastai 0.7's argument order.
LM_DROPS = dict(output_p=0.1, hidden_p=0.15, input_p=0.25, embed_p=0.02, weight_p=0.2)
CLAS_DROPS = dict(output_p=0.4, hidden_p=0.3, input_p=0.4, embed_p=0.05, weight_p=0.5)


@dataclass(frozen=True)
class AWDLSTMConfig:
    """Architecture + dropouts; travels inside every checkpoint."""
    vocab_sz: int
    emb_sz: int
    n_hid: int
    n_layers: int
    pad_idx: int
    hidden_p: float
    input_p: float
    embed_p: float
    weight_p: float
    output_p: float

    @classmethod
    def make(cls, vocab_sz: int, emb_sz: int, n_hid: int, n_layers: int, drop_mult: float,
             drops: dict = LM_DROPS, pad_idx: int = 1) -> "AWDLSTMConfig":
        """A config whose five dropouts are ``drops`` scaled by ``drop_mult``."""
        return cls(vocab_sz, emb_sz, n_hid, n_layers, pad_idx,
                   **{k: v * drop_mult for k, v in drops.items()})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Variational dropout: one mask per sequence, shared over time. ``x``: (bs, sl, feat)."""
    if not training or p == 0:
        return x
    mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - p) / (1 - p)  # (bs, 1, feat)
    return x * mask


class RNNDropout(nn.Module):
    """Module form of :func:`locked_dropout` (so the probability shows in ``repr``)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        return locked_dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


def embedding_dropout(emb: nn.Embedding, ids: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Look up ``ids`` with whole vocabulary rows dropped (and the rest scaled by 1/(1-p))."""
    weight = emb.weight
    if training and p > 0:
        mask = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p) / (1 - p)  # (vocab, 1)
        weight = weight * mask
    return F.embedding(ids, weight, emb.padding_idx)


class WeightDropLSTM(nn.Module):
    """One batch-first LSTM layer whose hidden-to-hidden weight is DropConnect-ed in training.

    Calls the fused ``torch.lstm`` kernel with the (possibly dropped) weights, so there is no
    parameter swapping, no non-contiguous-weight warning, and eval mode uses the raw weights.
    """

    def __init__(self, n_in: int, n_out: int, weight_p: float):
        super().__init__()
        self.n_in, self.n_out, self.weight_p = n_in, n_out, weight_p
        k = n_out ** -0.5  # torch.nn.LSTM's init range
        self.weight_ih = nn.Parameter(torch.empty(4 * n_out, n_in).uniform_(-k, k))
        self.weight_hh_raw = nn.Parameter(torch.empty(4 * n_out, n_out).uniform_(-k, k))
        self.bias_ih = nn.Parameter(torch.empty(4 * n_out).uniform_(-k, k))
        self.bias_hh = nn.Parameter(torch.empty(4 * n_out).uniform_(-k, k))

    def forward(self, x: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]):
        """``x``: (bs, sl, n_in); ``hidden``: two (1, bs, n_out). Returns output, (h, c)."""
        w_hh = F.dropout(self.weight_hh_raw, self.weight_p, self.training)
        weights = [self.weight_ih, w_hh, self.bias_ih, self.bias_hh]
        out, h, c = torch.lstm(x, hidden, weights, True, 1, 0.0, self.training, False, True)
        return out, (h, c)

    def extra_repr(self):
        return f"{self.n_in}, {self.n_out}, weight_p={self.weight_p}"


class AWDLSTMEncoder(nn.Module):
    """Embedding + stacked weight-dropped LSTMs. Returns per-layer (raw_outputs, outputs)."""

    def __init__(self, cfg: AWDLSTMConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Embedding(cfg.vocab_sz, cfg.emb_sz, padding_idx=cfg.pad_idx)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        with torch.no_grad():
            self.encoder.weight[cfg.pad_idx].zero_()
        sizes = [cfg.emb_sz] + [cfg.n_hid] * (cfg.n_layers - 1) + [cfg.emb_sz]  # last = emb_sz (tied)
        self.rnns = nn.ModuleList(WeightDropLSTM(sizes[i], sizes[i + 1], cfg.weight_p)
                                  for i in range(cfg.n_layers))
        self.input_dp = RNNDropout(cfg.input_p)
        self.hidden_dps = nn.ModuleList(RNNDropout(cfg.hidden_p) for _ in range(cfg.n_layers - 1))
        self.hidden: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def reset(self) -> None:
        """Forget the carried hidden state (start of an epoch, of validation, of a document)."""
        self.hidden = None

    def _init_hidden(self, bs: int, like: torch.Tensor):
        return [(like.new_zeros(1, bs, r.n_out), like.new_zeros(1, bs, r.n_out)) for r in self.rnns]

    def forward(self, ids: torch.Tensor):
        """``ids``: (bs, sl) → raw_outputs, outputs: lists of (bs, sl, n_out_l) per layer."""
        bs = ids.size(0)
        x = embedding_dropout(self.encoder, ids, self.cfg.embed_p, self.training)  # (bs, sl, emb)
        x = self.input_dp(x)
        if self.hidden is None or self.hidden[0][0].size(1) != bs:
            self.hidden = self._init_hidden(bs, x)
        raw_outputs, outputs, new_hidden = [], [], []
        for i, rnn in enumerate(self.rnns):
            x, h = rnn(x, self.hidden[i])
            raw_outputs.append(x)
            new_hidden.append(tuple(t.detach() for t in h))  # truncated BPTT
            if i < len(self.hidden_dps):
                x = self.hidden_dps[i](x)
            outputs.append(x)
        self.hidden = new_hidden
        return raw_outputs, outputs


class AWDLSTMLM(nn.Module):
    """Language model: encoder + output dropout + decoder tied to the embedding.

    With ``sampled`` set (training with :class:`dlpipe.text.sampled.SampledSoftmaxLoss`), training
    forwards return the dropped last-layer states (bs, sl, emb) instead of logits: the loss scores
    only the true token and a sample of the vocabulary. Evaluation always returns full logits.
    """

    sampled = False

    def __init__(self, cfg: AWDLSTMConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = AWDLSTMEncoder(cfg)
        self.output_dp = RNNDropout(cfg.output_p)
        self.decoder = nn.Linear(cfg.emb_sz, cfg.vocab_sz)
        self.decoder.weight = self.encoder.encoder.weight  # tied weights (one Parameter)
        nn.init.zeros_(self.decoder.bias)

    def reset(self) -> None:
        self.encoder.reset()

    def forward(self, ids: torch.Tensor):
        """``ids``: (bs, sl) → logits (bs, sl, vocab), raw_outputs, outputs (last one dropped)."""
        raw_outputs, outputs = self.encoder(ids)
        out = self.output_dp(outputs[-1])
        outputs = outputs[:-1] + [out]
        if self.sampled and self.training:
            return out, raw_outputs, outputs                   # (bs, sl, emb): the loss decodes a sample
        return self.decoder(out), raw_outputs, outputs


def encoder_groups(enc: AWDLSTMEncoder) -> list[list[nn.Parameter]]:
    """[embedding], [rnn0], [rnn1], ... (input side first)."""
    return [[enc.encoder.weight]] + [list(r.parameters()) for r in enc.rnns]


def lm_splitter(model: AWDLSTMLM) -> list[list[nn.Parameter]]:
    """ULMFiT's LM groups: [rnn0], [rnn1], ..., [embedding (= decoder weight), decoder bias].

    The embedding/decoder group is last, so ``freeze_to(-1)`` trains only it (the first epoch
    after a vocabulary remap, where the new rows are "the most wrong").
    """
    emb, *rnns = encoder_groups(model.encoder)
    return rnns + [emb + [model.decoder.bias]]


def lm_state(model: AWDLSTMLM) -> dict:
    """The encoder's state_dict (what the classifier loads)."""
    return model.encoder.state_dict()


def remap_rows(old: torch.Tensor, old_itos: list[str], new_itos: list[str]) -> tuple[torch.Tensor, int]:
    """Reorder the rows of ``old`` (indexed by ``old_itos``) for ``new_itos``.

    Tokens absent from the old vocabulary get the mean row (a "reasonable scale", lesson 10).
    Works for an embedding (vocab, emb) and a decoder bias (vocab,). Returns (new, n_matched).
    """
    stoi = {t: i for i, t in enumerate(old_itos)}
    src = torch.tensor([stoi.get(t, -1) for t in new_itos], dtype=torch.long)
    hit = src >= 0
    new = old.mean(0, keepdim=True).expand(len(new_itos), *old.shape[1:]).clone()
    new[hit] = old[src[hit]]
    return new, int(hit.sum())


def remap_lm_state(state: dict, old_itos: list[str], new_itos: list[str]) -> tuple[dict, dict]:
    """Remap an :class:`AWDLSTMLM` state_dict to a new vocabulary (embedding, tied decoder, bias).

    Returns (new_state, stats) with stats ``{"vocab_matched": n, "vocab_matched_frac": f}``.
    """
    if state["encoder.encoder.weight"].size(0) != len(old_itos):
        raise ValueError(f"embedding has {state['encoder.encoder.weight'].size(0)} rows but "
                         f"the pretrained itos has {len(old_itos)} tokens")
    new = dict(state)
    emb, n = remap_rows(state["encoder.encoder.weight"], old_itos, new_itos)
    new["encoder.encoder.weight"] = new["decoder.weight"] = emb
    new["decoder.bias"], _ = remap_rows(state["decoder.bias"], old_itos, new_itos)
    return new, {"vocab_matched": n, "vocab_matched_frac": n / len(new_itos)}
