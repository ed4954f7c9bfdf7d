"""Peer: the model of PyTorch's tutorial "NLP From Scratch: Translation with a Sequence to Sequence
Network and Attention", trained by a plain PyTorch loop, at dlpipe's sizes.

Usage: python bench/peers/torch_tutorial_seq2seq.py SRC_IDS TGT_IDS BS EMB HID BATCHES WARMUP
Plain PyTorch (runs in the project venv). The model follows the tutorial: EncoderRNN (embedding,
dropout, batch-first GRU), BahdanauAttention (``Va(tanh(Wa(query) + Ua(keys)))``, softmax over the
source, context = weights @ keys; no padding mask), AttnDecoderRNN (embedding, dropout, attention
on the previous hidden state, GRU on cat(embedded, context), ``out`` Linear, log_softmax), the
encoder's final state as the decoder's first, the whole reference fed as decoder input (teacher
forcing), NLLLoss, one Adam per module at lr 1e-3. Rewritten, not copied; two changes: the
embedding width is its own argument (the tutorial's is the hidden size; equal here) and NLLLoss
ignores xxpad. The data are dlpipe's (imported from src/: ``pair_data``, ``pair_collate``,
``SortishSampler``) so that both sides train on identical padded batches; a torch DataLoader
batches them. Prints one JSON line (the same record as dlpipe's worker, bench/seq2seq_train.py).
"""
import json
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import torch                                                            # noqa: E402
import torch.nn.functional as F                                         # noqa: E402
from torch import nn                                                    # noqa: E402
from torch.utils.data import BatchSampler, DataLoader                   # noqa: E402

from bench.seq2seq_train import SEED, batch_record, flops_per_step      # noqa: E402
from dlpipe.tasks.seq2seq.train import pair_data                        # noqa: E402
from dlpipe.text.pairs import pair_collate                              # noqa: E402
from dlpipe.text.rules import PAD                                       # noqa: E402
from dlpipe.text.samplers import SortishSampler                         # noqa: E402

LR, DROPOUT = 1e-3, 0.1          # the tutorial's


class EncoderRNN(nn.Module):
    def __init__(self, vocab: int, emb: int, hid: int, dropout_p: float = DROPOUT):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.dropout = nn.Dropout(dropout_p)
        self.gru = nn.GRU(emb, hid, batch_first=True)

    def forward(self, src):
        """(bs, S) -> outputs (bs, S, hid), final state (1, bs, hid)."""
        return self.gru(self.dropout(self.embedding(src)))


class BahdanauAttention(nn.Module):
    def __init__(self, hid: int):
        super().__init__()
        self.Wa = nn.Linear(hid, hid)
        self.Ua = nn.Linear(hid, hid)
        self.Va = nn.Linear(hid, 1)

    def forward(self, query, keys):
        """query (bs, 1, hid), keys (bs, S, hid) -> context (bs, 1, hid), weights (bs, 1, S)."""
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys))).transpose(1, 2)
        weights = scores.softmax(-1)
        return weights @ keys, weights


class AttnDecoderRNN(nn.Module):
    def __init__(self, vocab: int, emb: int, hid: int, dropout_p: float = DROPOUT):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.dropout = nn.Dropout(dropout_p)
        self.attention = BahdanauAttention(hid)
        self.gru = nn.GRU(emb + hid, hid, batch_first=True)
        self.out = nn.Linear(hid, vocab)

    def forward(self, enc_out, enc_h, tgt_in):
        """Teacher forcing: step t reads tgt_in[:, t] (xxbos first); -> log-probs (bs, T, vocab)."""
        h, steps = enc_h, []
        for t in range(tgt_in.shape[1]):
            logits, h = self.forward_step(tgt_in[:, t:t + 1], h, enc_out)
            steps.append(logits)
        return F.log_softmax(torch.cat(steps, 1), dim=-1)

    def forward_step(self, y, h, enc_out):
        e = self.dropout(self.embedding(y))                                # (bs, 1, emb)
        ctx, _ = self.attention(h.permute(1, 0, 2), enc_out)              # (bs, 1, hid)
        out, h = self.gru(torch.cat([e, ctx], -1), h)
        return self.out(out), h


def main():
    src, tgt = sys.argv[1:3]
    bs, emb, hid, n, warmup = map(int, sys.argv[3:8])
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    src_v, tgt_v, ds = pair_data(Path(src), Path(tgt), "train")
    pad = tgt_v.stoi[PAD]
    dl = DataLoader(ds, batch_sampler=BatchSampler(SortishSampler(ds.src.lengths, bs, SEED), bs, drop_last=False),
                    collate_fn=partial(pair_collate, pad_idx=pad))
    encoder, decoder = EncoderRNN(len(src_v), emb, hid), AttnDecoderRNN(len(tgt_v), emb, hid)
    enc_opt, dec_opt = torch.optim.Adam(encoder.parameters(), lr=LR), torch.optim.Adam(decoder.parameters(), lr=LR)
    criterion = nn.NLLLoss(ignore_index=pad)
    encoder.train(), decoder.train()

    def forward_backward(x, t_in, t_out):
        enc_out, enc_h = encoder(x)
        logp = decoder(enc_out, enc_h, t_in)
        loss = criterion(logp.view(-1, logp.size(-1)), t_out.reshape(-1))
        loss.backward()
        return loss

    stamps, batches, losses = [], [], []
    for (x, t_in), t_out in dl:
        enc_opt.zero_grad()
        dec_opt.zero_grad()
        loss = forward_backward(x, t_in, t_out)
        enc_opt.step()
        dec_opt.step()
        losses.append(loss.item())
        stamps.append(time.perf_counter())
        batches.append((x, t_in, t_out))
        if len(stamps) >= warmup + n:
            break
    fl = flops_per_step(lambda: forward_backward(*batches[-1]))
    out = batch_record(batches[warmup - 1:], stamps[warmup - 1:], losses, pad)
    n_params = sum(p.numel() for m in (encoder, decoder) for p in m.parameters())
    print(json.dumps({**out, "flops_last": fl, "n_params": n_params, "n_train": len(ds), "src_vocab": len(src_v),
                      "tgt_vocab": len(tgt_v), "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
