"""Samples from the fine-tuned forward LM: each prompt continued a few times, as a Markdown report."""
from __future__ import annotations

from pathlib import Path

from dlpipe.core.atomic import write_text
from dlpipe.core.errors import DataError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.runtime import apply as setup
from dlpipe.tasks.ulmfit.lm import load_lm
from dlpipe.tasks.ulmfit.params import GenerateParams
from dlpipe.text.generate import detokenize, generate
from dlpipe.text.tokenize import tokenize_texts


def generate_samples(*, lm: Path, out: Path, p: GenerateParams, rt: RuntimeParams) -> dict:
    """Continue each prompt ``n_samples`` times; write a Markdown report of prompts and continuations."""
    setup(rt)
    model, itos, extra = load_lm(lm)
    if extra.get("direction", "fwd") != "fwd":
        raise DataError(f"{lm}: generation needs a forward LM, got direction {extra.get('direction')!r}")
    stoi = {t: i for i, t in enumerate(itos)}
    banned = tuple(stoi[t] for t in ("xxunk", "xxpad", "xxbos", "xxfld") if t in stoi)
    lines = [f"# IMDb LM samples\n\nLM: `{lm}` · temperature {p.temperature} · top-k {p.top_k} · "
             f"seed {p.seed} · {p.n_words} tokens each\n"]
    n_unk = 0
    for i, (prompt, toks) in enumerate(zip(p.prompts, tokenize_texts(list(p.prompts)))):
        ids = [stoi.get(t, 0) for t in toks]
        n_unk += sum(1 for t in ids if t == 0)
        lines.append(f"\n## Prompt {i + 1}\n\n> {prompt}\n")
        for s in range(p.n_samples):
            ids_out = generate(model, ids, p.n_words, p.temperature, p.top_k, p.seed + 1000 * i + s, banned)
            lines.append(f"{s + 1}. …{detokenize([itos[j] for j in ids_out])}\n")
    write_text(out, "\n".join(lines))
    return {"n_prompts": len(p.prompts), "prompt_unk_tokens": n_unk}
