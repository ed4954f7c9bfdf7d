"""The LM training step both sides are timed with (pure torch: imported by dlpipe's worker and the peer's).

One step = zero_grad -> forward -> cross-entropy over (bs*bptt) tokens -> backward -> Adam step,
on seeded random ids, hidden state carried across steps (truncated BPTT), 2 intra-op threads.
"""
import json
import statistics
import time

import torch
import torch.nn.functional as F


def time_steps(model, vocab: int, bs: int, bptt: int, steps: int, warmup: int, seed: int = 0) -> dict:
    """Median seconds per training step of ``model`` (returns logits first, like both LMs)."""
    gen = torch.Generator().manual_seed(seed)
    data = torch.randint(2, vocab, (warmup + steps, bs, bptt + 1), generator=gen)  # (steps, bs, bptt+1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    times = []
    for i in range(warmup + steps):
        x, y = data[i, :, :-1], data[i, :, 1:]
        t0 = time.perf_counter()
        opt.zero_grad()
        logits = model(x)[0]                                     # (bs, bptt, vocab)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return {"step_s": statistics.median(times), "step_min_s": min(times), "step_max_s": max(times),
            "tokens_per_step": bs * bptt, "loss": float(loss)}


def main_args(argv):
    """Parse 'VOCAB EMB HID LAYERS BS BPTT STEPS WARMUP' (shared by both workers)."""
    vocab, emb, hid, layers, bs, bptt, steps, warmup = map(int, argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    return vocab, emb, hid, layers, bs, bptt, steps, warmup


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)
