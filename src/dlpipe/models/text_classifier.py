"""ULMFiT classifier: the AWD-LSTM encoder read chunk by chunk + a concat-pooling head.

    ids (bs, sl), whole bptt chunks of padding first ──MultiBatchEncoder: bptt-sized chunks,
        hidden carried (zero until a row's text starts)──▶ last layer (bs, sl, emb) + pad mask (bs, sl)
    ──concat pooling: [last real, max, mean] over non-pad positions──▶ (bs, 3·emb)
    ──[BatchNorm → Dropout → Linear → ReLU] ... → [BatchNorm → Dropout → Linear]──▶ (bs, n_classes)

"Back-propagation through time for text classification" (lesson 10): every chunk is run, but
only the chunks covering the last ``max_len`` tokens keep their autograd graph.
"""
from __future__ import annotations

import torch
from torch import nn

from dlpipe.models.awd_lstm import AWDLSTMConfig, AWDLSTMEncoder, encoder_groups


class MultiBatchEncoder(nn.Module):
    """Run an :class:`AWDLSTMEncoder` over a long batch ``bptt`` tokens at a time."""

    def __init__(self, encoder: AWDLSTMEncoder, bptt: int, max_len: int):
        super().__init__()
        self.encoder, self.bptt, self.max_len = encoder, bptt, max_len

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``ids``: (bs, sl) → last-layer outputs (bs, sl, emb), pad mask (bs, sl; True = pad)."""
        bs, sl = ids.shape
        self.encoder.reset()
        # A frozen encoder needs no graph at all: the whole document then runs without one.
        wants_grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.encoder.parameters())
        outs = []
        for start in range(0, sl, self.bptt):
            keep = wants_grad and start + self.bptt > sl - self.max_len  # chunk overlaps the last max_len
            chunk = ids[:, start:start + self.bptt]
            with torch.set_grad_enabled(keep):
                _, outputs = self.encoder(chunk)
            self._hold_unstarted(chunk)
            outs.append(outputs[-1])
        return torch.cat(outs, dim=1), ids == self.encoder.cfg.pad_idx

    def _hold_unstarted(self, chunk: torch.Tensor) -> None:
        """Rows whose chunk was all padding have not started: back to the zero state, so with
        chunk-aligned padding (``pad_collate(seq_len=bptt)``) every text is read from a zero state
        exactly as if it were alone (fastai v2 skips those rows; zeroing them is the same)."""
        started = (chunk != self.encoder.cfg.pad_idx).any(1)            # (bs,)
        if bool(started.all()):
            return
        keep = started.view(1, -1, 1).to(self.encoder.hidden[0][0].dtype)   # (1, bs, 1)
        self.encoder.hidden = [(h * keep, c * keep) for h, c in self.encoder.hidden]


def masked_concat_pool(out: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """[last, max, mean] of ``out`` (bs, sl, emb) over positions where ``pad`` (bs, sl) is False.

    "last" is each row's last real token (padding may follow it, see ``pad_collate``).
    """
    keep = (~pad).unsqueeze(-1).to(out.dtype)                          # (bs, sl, 1)
    last = out.size(1) - 1 - (~pad).flip(1).int().argmax(1)           # (bs,) position of the last real token
    n = keep.sum(1).clamp(min=1)                                       # (bs, 1)
    mean = (out * keep).sum(1) / n                                      # (bs, emb)
    mx = out.masked_fill(pad.unsqueeze(-1), float("-inf")).max(1).values
    mx = torch.where(torch.isinf(mx), torch.zeros_like(mx), mx)         # all-pad rows (defensive)
    return torch.cat([out[torch.arange(out.size(0)), last], mx, mean], dim=1)   # (bs, 3·emb)


class PoolingLinearClassifier(nn.Module):
    """Concat pooling, then BatchNorm/Dropout/Linear blocks (ReLU between) over ``layers`` sizes."""

    def __init__(self, layers: list[int], drops: list[float]):
        super().__init__()
        if len(drops) != len(layers) - 1:
            raise ValueError(f"head: {len(layers) - 1} linear layers need as many dropouts, got {len(drops)}")
        blocks = []
        for i, (n_in, n_out, p) in enumerate(zip(layers[:-1], layers[1:], drops)):
            blocks += [nn.BatchNorm1d(n_in), nn.Dropout(p), nn.Linear(n_in, n_out)]
            if i < len(drops) - 1:
                blocks.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*blocks)

    def forward(self, out: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        return self.layers(masked_concat_pool(out, pad))


class TextClassifier(nn.Module):
    """Encoder (loadable from an LM's ``encoder.pt``) + pooling head. ``forward(ids) -> logits``."""

    def __init__(self, cfg: AWDLSTMConfig, n_classes: int, lin_ftrs: list[int], head_drops: list[float],
                 bptt: int, max_len: int):
        super().__init__()
        self.cfg = cfg
        self.encoder = MultiBatchEncoder(AWDLSTMEncoder(cfg), bptt, max_len)
        self.head = PoolingLinearClassifier([3 * cfg.emb_sz, *lin_ftrs, n_classes], head_drops)

    def reset(self) -> None:
        self.encoder.encoder.reset()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(*self.encoder(ids))


def classifier_splitter(model: TextClassifier) -> list[list[nn.Parameter]]:
    """ULMFiT's classifier groups: [embedding], [rnn0], ..., [rnn_{n-1}], [head]."""
    return encoder_groups(model.encoder.encoder) + [list(model.head.parameters())]
