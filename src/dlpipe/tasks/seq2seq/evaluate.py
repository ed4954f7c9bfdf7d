"""evaluate_seq2seq: decode the official test set (greedy, beam), score with sacrebleu, draw attention.

Hypotheses are detokenized (xxmaj/xxup restored, spacing fixed, first letter capitalised) and scored
against the normalised reference sentences with sacrebleu's corpus BLEU (default 13a tokenization,
cased; its signature is in the metrics; ``bleu_lowercase`` too) and chrF. The yardstick computed beside it: nearest-neighbour retrieval, the
English side of the training pair whose French side is closest (TF-IDF cosine) to the test
sentence, a strong baseline on captions, which repeat a lot.

Outputs in the log dir: metrics (returned), ``samples.md`` (source, reference, greedy, beam),
``attention.png`` (attention models: weights of a few test sentences).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import sacrebleu
import torch
from tqdm import tqdm

from dlpipe.core.atomic import write_text
from dlpipe.core import runtime
from dlpipe.core.runtime import RuntimeParams, pick_device
from dlpipe.io.checkpoint import load_model
from dlpipe.models.seq2seq import Seq2Seq, Seq2SeqConfig
from dlpipe.plots import md_table
from dlpipe.tasks.seq2seq.params import EvaluateParams
from dlpipe.text.corpus import load_corpus
from dlpipe.text.decode import Decoded, beam_search, greedy
from dlpipe.text.generate import detokenize
from dlpipe.text.pairs import pad_right
from dlpipe.text.plots import plot_attention
from dlpipe.text.samplers import SortSampler


def corpus_scores(hyps: list[str], refs: list[str]) -> dict:
    """sacrebleu corpus BLEU and chrF of detokenized hypotheses against one reference each."""
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    b = bleu.corpus_score(hyps, [refs])
    return {"bleu": round(b.score, 2), "chrf": round(chrf.corpus_score(hyps, [refs]).score, 2),
            "bleu_lowercase": round(sacrebleu.metrics.BLEU(lowercase=True).corpus_score(hyps, [refs]).score, 2),
            "bleu_precisions": [round(x, 1) for x in b.precisions], "brevity_penalty": round(b.bp, 4),
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


def load_seq2seq(path: Path) -> tuple[Seq2Seq, dict]:
    blob = load_model(path)
    net = Seq2Seq(Seq2SeqConfig(**blob["config"]))
    load_model(path, net)
    return net.eval(), blob["extra"]


def decode_corpus(net: Seq2Seq, src_ids: list[np.ndarray], bs: int, beam: int, alpha: float, ratio: float,
                  device: torch.device, desc: str, greedy_result: Decoded | None = None) -> Decoded:
    """Decode every source (longest first, batches of ``bs``), results back in input order; beam search
    reuses ``greedy_result`` (this corpus decoded greedily) instead of decoding it again."""
    cfg = net.cfg
    order = list(iter(SortSampler([len(s) for s in src_ids])))
    toks: list = [None] * len(src_ids)
    scores = torch.zeros(len(src_ids))
    atts: list = [None] * len(src_ids)
    for i in tqdm(range(0, len(order), bs), desc=desc, unit=" batches", mininterval=2):
        idx = order[i:i + bs]
        x = pad_right([src_ids[j] for j in idx], cfg.pad_idx).to(device)
        max_len = int(ratio * x.shape[1]) + 10
        g = None if greedy_result is None else Decoded([greedy_result.tokens[j] for j in idx], greedy_result.scores[idx],
                                                       [greedy_result.attention[j] for j in idx])
        d = (greedy(net, x, max_len, cfg.bos_idx, cfg.eos_idx, alpha) if beam == 1 else
             beam_search(net, x, beam, max_len, cfg.bos_idx, cfg.eos_idx, alpha, cfg.pad_idx, greedy_result=g))
        for k, j in enumerate(idx):
            toks[j], scores[j], atts[j] = d.tokens[k], d.scores[k], d.attention[k]
    return Decoded(toks, scores, atts)


def to_text(ids: list[int], itos: list[str], eos_idx: int) -> str:
    """Generated ids -> a sentence. fastai's rules lower-case a one-letter capital without a marker
    ("A man" -> ``a man``), so detokenizing cannot restore the capital every caption starts with: the
    first letter is capitalised (sentence-initial truecasing)."""
    text = detokenize([itos[i] for i in ids if i != eos_idx])
    return text[:1].upper() + text[1:]


def retrieval_baseline(train_src: list[str], train_tgt: list[str], test_src: list[str]) -> list[str]:
    """For each test sentence, the translation of the most similar training sentence (TF-IDF cosine)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    a = vec.fit_transform(train_src)
    b = vec.transform(test_src)
    best = np.asarray((b @ a.T).argmax(1)).ravel()      # rows are L2-normalised: the product is the cosine
    return [train_tgt[i] for i in best]


def read_lines(path: Path) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def evaluate_seq2seq(*, model: Path, src: Path, text: Path, out_dir: Path, p: EvaluateParams,
                     rt: RuntimeParams) -> dict:
    """Greedy (and beam) BLEU/chrF on the test split, the retrieval baseline, samples and attention maps.

    Args:
        model: train_seq2seq's model.pt.
        src: the source language's id corpora (``<src>/test``).
        text: prepare_pairs' ``text`` dir (``{train,test}.{fr,en}``).
        out_dir: gets samples.md and attention.png.
    """
    runtime.apply(rt)
    net, extra = load_seq2seq(model)
    dev = pick_device(rt.device)
    net.to(dev)
    corpus = load_corpus(Path(src) / "test")
    src_ids = [np.asarray(corpus.doc(i), np.int64) for i in range(len(corpus))]
    refs, src_text = read_lines(Path(text) / "test.en"), read_lines(Path(text) / "test.fr")
    itos, eos = extra["tgt_itos"], net.cfg.eos_idx
    t0 = time.perf_counter()
    g = decode_corpus(net, src_ids, p.bs, 1, p.alpha, p.max_len_ratio, dev, "greedy")
    secs_greedy = time.perf_counter() - t0
    hyp_g = [to_text(t, itos, eos) for t in g.tokens]
    m: dict = {"n_test": len(refs), "greedy": corpus_scores(hyp_g, refs), "greedy_seconds": round(secs_greedy, 1)}
    hyp_b = None
    if p.beam > 1:
        t0 = time.perf_counter()
        b = decode_corpus(net, src_ids, p.bs, p.beam, p.alpha, p.max_len_ratio, dev, f"beam {p.beam}", greedy_result=g)
        hyp_b = [to_text(t, itos, eos) for t in b.tokens]
        m["beam"] = {**corpus_scores(hyp_b, refs), "k": p.beam, "alpha": p.alpha,
                     "mean_score_gain": round(float((b.scores - g.scores).mean()), 4)}
        m["beam_seconds"] = round(time.perf_counter() - t0, 1)
    base = retrieval_baseline(read_lines(Path(text) / "train.fr"), read_lines(Path(text) / "train.en"), src_text)
    m["baseline_retrieval"] = corpus_scores(base, refs)
    best = m.get("beam", m["greedy"])
    m.update(bleu=best["bleu"], chrf=best["chrf"], decoding="beam" if hyp_b else "greedy",
             bleu_signature=best["bleu_signature"])
    log_dir = Path(out_dir)
    n = min(p.n_samples, len(refs))
    rows = [[src_text[i], refs[i], hyp_g[i]] + ([hyp_b[i]] if hyp_b else []) + [base[i]] for i in range(n)]
    header = ["source (fr)", "reference (en)", "greedy"] + ([f"beam {p.beam}"] if hyp_b else []) + ["retrieval baseline"]
    write_text(log_dir / "samples.md", f"# Test translations (first {n} of {len(refs)})\n\n"
               f"Test BLEU {m['bleu']} ({m['decoding']}), retrieval baseline {m['baseline_retrieval']['bleu']}.\n\n"
               + md_table(header, rows))
    src_itos = extra["src_itos"]
    picks = range(min(p.n_heatmaps, len(refs))) if net.cfg.attention else []
    plot_attention([([src_itos[t] for t in src_ids[i]], [itos[t] for t in g.tokens[i]], g.attention[i].numpy())
                    for i in picks], log_dir / "attention.png",
                   empty_note="this model has no attention (seq2seq.model.attention: false)" if not net.cfg.attention
                   else "no sentences drawn (seq2seq.evaluate.n_heatmaps: 0)")
    return m
