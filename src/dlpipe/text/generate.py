"""Sample continuations from an AWD-LSTM language model, and turn tokens back into readable text.

Sampling is seeded by a private ``torch.Generator`` (the same prompt, seed, temperature and top-k
give the same words), runs in eval mode (no dropout) and feeds one token at a time, carrying the
hidden state: the prompt is read once, then each sampled token is the next input.
"""
from __future__ import annotations

import re

import torch

from dlpipe.text.rules import BOS, EOS, FLD, PAD, SPECIALS, TK_MAJ, TK_REP, TK_UP, TK_WREP

_NO_SPACE_BEFORE = re.compile(r" (?=[.,!?;:%)\]}]|'s\b|'re\b|'ve\b|'ll\b|'d\b|'m\b|n't\b)", re.IGNORECASE)
_NO_SPACE_AFTER = re.compile(r"([(\[{$]) ")


@torch.no_grad()
def generate(model, prompt_ids: list[int], n_words: int, temperature: float, top_k: int, seed: int,
             banned: tuple[int, ...] = ()) -> list[int]:
    """Sample ``n_words`` token ids continuing ``prompt_ids``.

    Args:
        model: an AWDLSTMLM (``forward(ids) -> (logits, raw, outputs)``, ``reset()``).
        prompt_ids: the prompt's ids (at least one).
        temperature: logits are divided by it (<1 sharper, >1 flatter); 0 means greedy.
        top_k: sample among the k most likely tokens only (0 = all).
        seed: seeds the sampler's private generator.
        banned: ids never sampled (e.g. xxunk, xxpad).
    Returns:
        The sampled ids (prompt excluded).
    """
    if not prompt_ids:
        raise ValueError("generate: empty prompt")
    was_training = model.training
    model.eval()
    model.reset()
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    x = torch.tensor([prompt_ids], device=dev)          # (1, prompt_len)
    out: list[int] = []
    try:
        for _ in range(n_words):
            logits = model(x)[0][0, -1].float().cpu()     # (vocab,) for the last position
            nxt = _sample(logits, temperature, top_k, gen, banned)
            out.append(nxt)
            x = torch.tensor([[nxt]], device=dev)
    finally:
        model.reset()
        model.train(was_training)
    return out


def _sample(logits: torch.Tensor, temperature: float, top_k: int, gen: torch.Generator,
            banned: tuple[int, ...]) -> int:
    if banned:
        logits[list(banned)] = float("-inf")
    if temperature == 0:
        return int(logits.argmax())
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits / temperature, dim=0)
    return int(torch.multinomial(probs, 1, generator=gen))


def detokenize(tokens: list[str]) -> str:
    """fastai tokens → readable text: apply xxmaj/xxup/xxrep/xxwrep, drop markers, fix spacing."""
    words: list[str] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if t in (TK_MAJ, TK_UP) and nxt and nxt not in SPECIALS:
            words.append(nxt[:1].upper() + nxt[1:] if t == TK_MAJ else nxt.upper())
            i += 2
        elif t in (TK_REP, TK_WREP) and i + 2 < len(tokens) and tokens[i + 1].isdigit():
            n, w = int(tokens[i + 1]), tokens[i + 2]
            words.append(w * n if t == TK_REP else " ".join([w] * n))
            i += 3
        elif t in (BOS, EOS, PAD, FLD, TK_MAJ, TK_UP, TK_REP, TK_WREP):
            i += 1
        else:
            words.append(t)
            i += 1
    text = " ".join(words)
    text = _NO_SPACE_BEFORE.sub("", text)
    return _NO_SPACE_AFTER.sub(r"\1", text).strip()
