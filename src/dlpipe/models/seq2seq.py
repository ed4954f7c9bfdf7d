"""GRU encoder-decoder for translation (lesson 11), every rung of the lecture's ladder a config flag.

    src (bs, S) ──emb──► GRU encoder (bidir: both directions) ──► enc_out (bs, S, enc_dim)
                                                       final h ─bridge─► decoder h0 (L, bs, n_hid)
    y_{t-1} ──emb──► [⊕ context_t] ─► GRU decoder ─► [h_t ⊕ context_t ⊕ emb] ─► pre ─► tied head ─► logits_t

``attention`` adds Bahdanau's additive attention: ``context_t = Σ_s w_ts enc_out_s`` with
``w_t = softmax_s(v·tanh(W_k enc_out_s + W_q h_{t-1}))``, padded source positions masked to zero
weight. ``pr_force`` (set by :class:`dlpipe.text.forcing.TeacherForcing`) is the per-step
probability, while training, of feeding the reference token instead of the model's own argmax;
evaluation always feeds the model's own prediction.

Decoding (greedy, beam) lives in :mod:`dlpipe.text.decode`; it needs only :meth:`Seq2Seq.encode`
and :meth:`Seq2Seq.step`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class Seq2SeqConfig:
    src_vocab: int
    tgt_vocab: int
    emb_sz: int = 256
    n_hid: int = 256            # encoder width per direction, and the decoder's width
    n_layers: int = 1
    bidir: bool = True
    attention: bool = True
    dropout: float = 0.2
    pad_idx: int = 1            # xxpad
    bos_idx: int = 2            # xxbos
    eos_idx: int = 3            # xxeos

    @property
    def enc_dim(self) -> int:
        return self.n_hid * (2 if self.bidir else 1)


class Encoded(NamedTuple):
    """What the decoder attends to (all rows of one batch, or of its beams)."""
    out: torch.Tensor           # (bs, S, enc_dim) encoder outputs, zeros at padding
    keys: torch.Tensor          # (bs, S, n_hid) W_k · out, computed once per sentence (= out without attention)
    mask: torch.Tensor          # (bs, S) True at real (non-pad) source tokens

    def index(self, rows: torch.Tensor) -> "Encoded":
        """The rows ``rows`` (beam search: repeat and reorder hypotheses)."""
        return Encoded(self.out[rows], self.keys[rows], self.mask[rows])


class Encoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.emb = nn.Embedding(cfg.src_vocab, cfg.emb_sz, padding_idx=cfg.pad_idx)
        self.drop = nn.Dropout(cfg.dropout)
        self.rnn = nn.GRU(cfg.emb_sz, cfg.n_hid, cfg.n_layers, batch_first=True, bidirectional=cfg.bidir,
                          dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)
        self.cfg = cfg

    def forward(self, src: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``src`` (bs, S) right-padded -> outputs (bs, S, enc_dim), final state (L, bs, enc_dim)."""
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.drop(self.emb(src)), lengths, batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        if self.cfg.bidir:   # h (L*2, bs, n_hid) -> (L, bs, 2*n_hid): each layer's fwd and bwd final states side by side
            h = h.view(self.cfg.n_layers, 2, *h.shape[1:]).permute(0, 2, 1, 3).reshape(self.cfg.n_layers, h.shape[1], -1)
        return out, h


class Attention(nn.Module):
    """Bahdanau (additive) attention over the encoder outputs."""

    def __init__(self, enc_dim: int, dec_dim: int, att_dim: int):
        super().__init__()
        self.k = nn.Linear(enc_dim, att_dim, bias=False)
        self.q = nn.Linear(dec_dim, att_dim)
        self.v = nn.Linear(att_dim, 1, bias=False)

    def forward(self, enc: Encoded, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``query`` (bs, dec_dim) -> context (bs, enc_dim), weights (bs, S) (0 at padding, rows sum to 1)."""
        e = self.v(torch.tanh(enc.keys + self.q(query)[:, None])).squeeze(-1)     # (bs, S)
        w = e.masked_fill(~enc.mask, float("-inf")).softmax(-1)
        return torch.bmm(w[:, None], enc.out).squeeze(1), w


class Decoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        d, ctx = cfg.n_hid, (cfg.enc_dim if cfg.attention else 0)
        self.emb = nn.Embedding(cfg.tgt_vocab, cfg.emb_sz, padding_idx=cfg.pad_idx)
        self.drop = nn.Dropout(cfg.dropout)
        self.attn = Attention(cfg.enc_dim, d, d) if cfg.attention else None
        self.rnn = nn.GRU(cfg.emb_sz + ctx, d, cfg.n_layers, batch_first=True,
                          dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)
        self.pre = nn.Linear(d + ctx + cfg.emb_sz, cfg.emb_sz)
        self.head = nn.Linear(cfg.emb_sz, cfg.tgt_vocab)
        self.head.weight = self.emb.weight      # tied input/output embeddings (lesson 11)

    def forward(self, y_prev: torch.Tensor, h: torch.Tensor, enc: Encoded):
        """One step: previous tokens (bs,), state (L, bs, n_hid) -> logits (bs, V), new state, weights (bs, S) or None."""
        feats, h, w = self.features(y_prev, h, enc)
        return self.logits(feats), h, w

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Pre-output features (..., emb) -> logits (..., V) through the tied head."""
        return self.head(feats)

    def features(self, y_prev: torch.Tensor, h: torch.Tensor, enc: Encoded):
        """The step without the head: features (bs, emb), new state, weights."""
        e = self.drop(self.emb(y_prev))                                              # (bs, emb)
        w = None
        if self.attn is not None:
            ctx, w = self.attn(enc, h[-1])                                           # (bs, enc_dim), (bs, S)
            e_in, extra = torch.cat([e, ctx], -1), [ctx]
        else:
            e_in, extra = e, []
        out, h = self.rnn(e_in[:, None], h)                                          # out (bs, 1, dec_dim)
        feats = torch.cat([out[:, 0], *extra, e], -1)
        return self.drop(torch.tanh(self.pre(feats))), h, w


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.bridge = nn.Linear(cfg.enc_dim, cfg.n_hid)      # encoder final state(s) -> decoder initial state
        self.decoder = Decoder(cfg)
        self.pr_force = 0.0
        for emb in (self.encoder.emb, self.decoder.emb):     # N(0, 1) rows would make the tied head's logits ~16x too big
            nn.init.uniform_(emb.weight, -0.1, 0.1)
            emb.weight.data[cfg.pad_idx] = 0

    def encode(self, src: torch.Tensor) -> tuple[Encoded, torch.Tensor]:
        """``src`` (bs, S) -> (what to attend to, decoder initial state (L, bs, n_hid))."""
        mask = src != self.cfg.pad_idx
        out, h = self.encoder(src, mask)
        keys = self.decoder.attn.k(out) if self.decoder.attn is not None else out
        return Encoded(out, keys, mask), torch.tanh(self.bridge(h))

    def step(self, y_prev: torch.Tensor, h: torch.Tensor, enc: Encoded):
        return self.decoder(y_prev, h, enc)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """``tgt_in`` (bs, T) starts with xxbos; returns logits (bs, T, V) for ``tgt_in`` shifted left."""
        enc, h = self.encode(src)
        force = self.pr_force if self.training else 0.0
        if force >= 1.0:         # pure teacher forcing: no argmax needed, so one head product for all steps
            feats = []
            for t in range(tgt_in.shape[1]):
                f, h, _ = self.decoder.features(tgt_in[:, t], h, enc)
                feats.append(f)
            return self.decoder.logits(torch.stack(feats, 1))                     # (bs, T, V)
        y, logits = tgt_in[:, 0], []
        for t in range(tgt_in.shape[1]):
            lg, h, _ = self.step(y, h, enc)
            logits.append(lg)
            if t + 1 < tgt_in.shape[1]:
                y = lg.argmax(-1)
                if force > 0:    # teacher forcing: per row, the reference token with probability pr_force
                    y = torch.where(torch.rand(y.shape, device=y.device) < force, tgt_in[:, t + 1], y)
        return torch.stack(logits, 1)



def seq2seq_splitter(model: Seq2Seq) -> list[list[nn.Parameter]]:
    """Two groups, input side first: encoder (+ bridge), decoder (attention, GRU, tied head)."""
    return [[*model.encoder.parameters(), *model.bridge.parameters()], list(model.decoder.parameters())]


def load_embeddings(emb: nn.Embedding, itos: list[str], vec_itos: list[str], vectors: torch.Tensor) -> int:
    """Copy ``vectors`` (n, emb_sz) rows into ``emb`` for every token both vocabularies share; returns how many."""
    if vectors.shape[1] != emb.weight.shape[1]:
        raise ValueError(f"embedding vectors have {vectors.shape[1]} dims, the model's embedding {emb.weight.shape[1]}")
    where = {t: i for i, t in enumerate(vec_itos)}
    pairs = [(i, where[t]) for i, t in enumerate(itos) if t in where]
    if pairs:
        dst, src = map(torch.tensor, zip(*pairs))
        with torch.no_grad():
            emb.weight[dst] = vectors[src].to(emb.weight.dtype)
    return len(pairs)

