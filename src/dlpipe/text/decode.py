"""Greedy and beam-search decoding of an encoder-decoder (anything with ``encode`` and ``step``).

``model.encode(src) -> (enc, h)`` and ``model.step(y_prev, h, enc) -> (logits, h, weights)``, as in
:class:`dlpipe.models.seq2seq.Seq2Seq`. A hypothesis ends at ``eos_idx`` (kept in the output) or
after ``max_len`` tokens. Its score is the sum of its tokens' log-probabilities (xxeos included),
divided by ``length ** alpha`` when ``alpha > 0`` (GNMT's length normalisation, simplified).

Beam search keeps, per sentence, the ``k`` best prefixes; a finished hypothesis stays in the beam
with its score frozen. With ``k = 1`` and ``alpha = 0`` it is exactly greedy decoding. The greedy
hypothesis is also a candidate of the final choice, so beam search never returns a hypothesis the
model scores lower than greedy's (plain beam search can: the greedy prefix may be pruned early).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Decoded:
    tokens: list[list[int]]         # per sentence: the ids generated (xxeos last if it ended)
    scores: torch.Tensor            # (bs,) model score of each hypothesis (see module doc)
    attention: list[torch.Tensor]   # per sentence: (len(tokens), S) weights, or empty tensors without attention


def _score(logp_sum: torch.Tensor, length: torch.Tensor, alpha: float) -> torch.Tensor:
    return logp_sum / length.clamp(min=1).float() ** alpha if alpha > 0 else logp_sum


@torch.no_grad()
def greedy(model, src: torch.Tensor, max_len: int, bos_idx: int, eos_idx: int, alpha: float = 0.0) -> Decoded:
    """Argmax decoding of a batch ``src`` (bs, S)."""
    enc, h = model.encode(src)
    bs = src.shape[0]
    y = torch.full((bs,), bos_idx, dtype=torch.long, device=src.device)
    done = torch.zeros(bs, dtype=torch.bool, device=src.device)
    logp_sum = torch.zeros(bs, device=src.device)
    length = torch.zeros(bs, dtype=torch.long, device=src.device)
    toks, atts = [], []
    for _ in range(max_len):
        logits, h, w = model.step(y, h, enc)
        logp = logits.float().log_softmax(-1)
        y = logp.argmax(-1)
        logp_sum += torch.where(done, 0.0, logp.gather(1, y[:, None]).squeeze(1))
        length += (~done).long()
        toks.append(torch.where(done, -1, y))
        atts.append(w if w is not None else torch.zeros(bs, 0, device=src.device))
        done |= y == eos_idx
        if bool(done.all()):
            break
    toks_t, atts_t = torch.stack(toks, 1).cpu(), torch.stack(atts, 1).float().cpu()    # (bs, T), (bs, T, S)
    out = [[int(t) for t in row if t >= 0] for row in toks_t]
    return Decoded(out, _score(logp_sum, length, alpha).cpu(), [atts_t[i, :len(o)] for i, o in enumerate(out)])


@torch.no_grad()
def beam_search(model, src: torch.Tensor, k: int, max_len: int, bos_idx: int, eos_idx: int,
                alpha: float = 0.0, pad_idx: int = 1, keep_greedy: bool = True,
                greedy_result: Decoded | None = None) -> Decoded:
    """The best of ``k`` beams per sentence of ``src`` (bs, S), or (``keep_greedy``) greedy's hypothesis
    where it scores higher; ``greedy_result`` is that hypothesis if the caller already decoded it."""
    enc, h = model.encode(src)
    bs, dev = src.shape[0], src.device
    rows = torch.arange(bs, device=dev).repeat_interleave(k)                 # (bs*k,) beam -> its sentence
    enc, h = enc.index(rows), h[:, rows]
    y = torch.full((bs * k,), bos_idx, dtype=torch.long, device=dev)
    logp_sum = torch.zeros(bs, k, device=dev)
    logp_sum[:, 1:] = float("-inf")                   # all beams start equal: keep one copy, not k
    done = torch.zeros(bs * k, dtype=torch.bool, device=dev)
    length = torch.zeros(bs * k, dtype=torch.long, device=dev)
    seqs = torch.zeros(bs * k, 0, dtype=torch.long, device=dev)
    atts = torch.zeros(bs * k, 0, src.shape[1], device=dev)
    for _ in range(max_len):
        logits, h, w = model.step(y, h, enc)
        logp = logits.float().log_softmax(-1)                                # (bs*k, V)
        # a finished beam extends only by padding, at no cost: its score stays frozen
        logp = torch.where(done[:, None], torch.full_like(logp, float("-inf")), logp)
        logp[done, pad_idx] = 0.0
        V = logp.shape[1]
        cand = (logp_sum.view(-1, 1) + logp).view(bs, k * V)
        # rank candidates by the normalised score, carry the raw sum
        cand_len = (length + (~done).long()).view(bs, k, 1).expand(bs, k, V).reshape(bs, k * V)
        top_idx = _score(cand, cand_len, alpha).topk(k, dim=1).indices       # (bs, k)
        logp_sum = cand.gather(1, top_idx)
        parent = (torch.arange(bs, device=dev)[:, None] * k + top_idx // V).view(-1)
        tok = (top_idx % V).view(-1)
        was_done = done[parent]
        seqs = torch.cat([seqs[parent], torch.where(was_done, -1, tok)[:, None]], 1)
        step_w = w[parent] if w is not None else torch.zeros(bs * k, src.shape[1], device=dev)
        atts = torch.cat([atts[parent], step_w[:, None].float()], 1)
        length = length[parent] + (~was_done).long()
        done = was_done | (tok == eos_idx)
        h, y = h[:, parent], tok
        if bool(done.all()):
            break
    final = _score(logp_sum.view(-1), length, alpha).view(bs, k)
    best = final.argmax(1)
    pick = torch.arange(bs, device=dev) * k + best
    out = [[int(t) for t in seqs[i] if t >= 0] for i in pick.tolist()]
    beam = Decoded(out, final.gather(1, best[:, None]).squeeze(1).cpu(),
                   [atts[i, :len(o)].cpu() for i, o in zip(pick.tolist(), out)])
    if w is None:
        beam.attention = [torch.zeros(len(o), 0) for o in out]
    if not keep_greedy:
        return beam
    return _better(beam, greedy_result or greedy(model, src, max_len, bos_idx, eos_idx, alpha))


def _better(a: Decoded, b: Decoded) -> Decoded:
    """Per sentence, the hypothesis with the higher score (``a``'s on ties)."""
    take_b = (b.scores > a.scores + 1e-6).tolist()
    return Decoded([tb if t else ta for ta, tb, t in zip(a.tokens, b.tokens, take_b)],
                   torch.where(torch.tensor(take_b), b.scores, a.scores),
                   [wb if t else wa for wa, wb, t in zip(a.attention, b.attention, take_b)])
