"""ULMFiT language models: pretrain on general English, fine-tune on IMDb, sample from the result.

Each stage function takes paths + params dataclasses and returns a metrics dict (DESIGN "Stages").

Outputs of an LM directory (``save_lm``)::

    lm.pt           save_model: AWDLSTMLM state_dict + AWDLSTMConfig (+ extra: direction, metrics)
    encoder.pt      save_model: the AWDLSTMEncoder alone (what the classifier loads)
    itos.json       the vocabulary the rows of the embedding follow
    embeddings.npy  float32 (vocab, emb_sz): the input embedding (= tied decoder) — read with
                    itos.json by the DeViSE task as word vectors; always written together.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from dlpipe.errors import DataError
from dlpipe.io.atomic import atomic_dir, write_text
from dlpipe.io.checkpoint import load_model, save_model
from dlpipe.models.awd_lstm import LM_DROPS, AWDLSTMConfig, AWDLSTMLM, lm_splitter, remap_lm_state
from dlpipe.params import ParamsError
from dlpipe.runtime import RuntimeParams  # noqa: F401  (stages import it from here)
from dlpipe.runtime import apply as setup
from dlpipe.text.callbacks import RNNCallback, RNNRegularizer, lm_loss
from dlpipe.text.corpus import Corpus, load_corpus
from dlpipe.text.generate import detokenize, generate
from dlpipe.text.lm_data import LMLoader
from dlpipe.text.tokenize import tokenize_texts
from dlpipe.train import Learner, accuracy, adamw, discriminative, is_main

Direction = Literal["fwd", "bwd"]


@dataclass(frozen=True)
class ModelParams:
    """AWD-LSTM size, shared by every LM and classifier of the task (weights must fit)."""
    emb_sz: int = field(metadata=dict(ge=1))
    n_hid: int = field(metadata=dict(ge=1))
    n_layers: int = field(metadata=dict(ge=1))


@dataclass(frozen=True)
class LMParams:
    """One LM training stage. ``epochs`` trains all groups; ``last_epochs`` first trains only the
    embedding/decoder group (fine-tuning after a vocabulary remap; 0 when pretraining)."""
    bs: int = field(metadata=dict(ge=1))
    bptt: int = field(metadata=dict(ge=2))
    drop_mult: float = field(metadata=dict(ge=0.0))
    last_epochs: int = field(metadata=dict(ge=0))
    lr_last: float = field(metadata=dict(gt=0.0))
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    schedule: Literal["stlr", "one_cycle", "cos", "const"]
    discriminative: bool
    wd: float = field(metadata=dict(ge=0.0))
    clip: float | None = field(metadata=dict(gt=0.0))
    alpha: float = field(metadata=dict(ge=0.0))   # AR
    beta: float = field(metadata=dict(ge=0.0))    # TAR
    pretrained: bool                              # fine-tune only: start from the pretrained LM
    max_vocab: int | None = field(metadata=dict(ge=10))  # pretrain only: keep the most frequent words
    max_tokens: int | None = field(metadata=dict(ge=1))  # per epoch: a seeded subset of whole documents
    checkpoint_every: int = field(metadata=dict(ge=0))


@dataclass(frozen=True)
class GenerateParams:
    prompts: list[str] = field(metadata=dict(nonempty=True))
    n_words: int = field(metadata=dict(ge=1))
    temperature: float = field(metadata=dict(ge=0.0))
    top_k: int = field(metadata=dict(ge=0))
    n_samples: int = field(metadata=dict(ge=1))
    seed: int


# ---- shared helpers ---------------------------------------------------------------------------

def read_itos(path: Path) -> list[str]:
    try:
        itos = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: vocabulary not found") from None
    if not isinstance(itos, list) or not itos or not all(isinstance(t, str) for t in itos):
        raise DataError(f"{path}: expected a JSON list of token strings")
    return itos


def fingerprint(*parts, files: tuple[Path, ...] = ()) -> str:
    """Hash of params/metadata and input files: a resume checkpoint only applies to the same run."""
    h = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def model_config(m: ModelParams, vocab_sz: int, drop_mult: float, drops: dict = LM_DROPS) -> AWDLSTMConfig:
    return AWDLSTMConfig.make(vocab_sz, m.emb_sz, m.n_hid, m.n_layers, drop_mult, drops)


def save_lm(out_dir: Path, model: AWDLSTMLM, itos: list[str], extra: dict) -> None:
    """lm.pt, encoder.pt, itos.json and embeddings.npy, all at once (atomic directory)."""
    cfg = model.cfg.to_dict()
    with atomic_dir(out_dir) as tmp:
        save_model(tmp / "lm.pt", model, cfg, extra)
        save_model(tmp / "encoder.pt", model.encoder, cfg, extra)
        write_text(tmp / "itos.json", json.dumps(itos, ensure_ascii=False))
        np.save(tmp / "embeddings.npy", model.encoder.encoder.weight.detach().cpu().float().numpy())


def load_lm(lm_dir: Path, drop_mult: float | None = None) -> tuple[AWDLSTMLM, list[str], dict]:
    """An LM from ``save_lm`` (optionally with its dropouts re-scaled), its itos and extra."""
    blob = load_model(Path(lm_dir) / "lm.pt")
    cfg = AWDLSTMConfig(**blob["config"])
    if drop_mult is not None:
        cfg = AWDLSTMConfig.make(cfg.vocab_sz, cfg.emb_sz, cfg.n_hid, cfg.n_layers, drop_mult, LM_DROPS, cfg.pad_idx)
    model = AWDLSTMLM(cfg)
    load_model(Path(lm_dir) / "lm.pt", model)
    return model, read_itos(Path(lm_dir) / "itos.json"), blob["extra"]


def cap_vocab(corpus: Corpus, n: int | None) -> Corpus:
    """Ids >= ``n`` become xxunk (0): itos is sorted by frequency, so this keeps the top ``n``."""
    if n is None:
        return corpus
    ids = np.asarray(corpus.ids)
    return Corpus(np.where(ids < n, ids, 0).astype(np.int32), corpus.offsets, corpus.labels, corpus.path)


def subsample(corpus: Corpus, max_tokens: int | None, seed: int) -> Corpus:
    """A seeded random subset of whole documents holding about ``max_tokens`` tokens (order kept)."""
    if max_tokens is None or corpus.n_tokens <= max_tokens:
        return corpus
    perm = np.random.default_rng(seed).permutation(len(corpus))
    n_docs = int(np.searchsorted(np.cumsum(corpus.lengths[perm]), max_tokens)) + 1
    keep = np.sort(perm[:n_docs])
    docs = [np.asarray(corpus.doc(i)) for i in keep]
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    return Corpus(np.concatenate(docs).astype(np.int32), offsets, np.asarray(corpus.labels)[keep], corpus.path)


def lm_learner(model: AWDLSTMLM, data_dir: Path, p: LMParams, rt: RuntimeParams, direction: Direction,
               run_dir: Path, log_dir: Path, fp: str) -> Learner:
    """Learner over ``data_dir/{train,valid}`` token streams (reversed for ``bwd``)."""
    back = direction == "bwd"
    train = cap_vocab(subsample(load_corpus(data_dir / "train"), p.max_tokens, rt.seed), p.max_vocab)
    valid = cap_vocab(load_corpus(data_dir / "valid"), p.max_vocab)
    train_dl = LMLoader(train, p.bs, p.bptt, rt.seed, shuffle=True, backwards=back)
    valid_dl = LMLoader(valid, p.bs, p.bptt, rt.seed, backwards=back, random_bptt=False)
    return Learner(model, train_dl, valid_dl, lm_loss, opt_func=adamw(), splitter=lm_splitter,
                   metrics=[accuracy], cbs=[RNNCallback(), RNNRegularizer(p.alpha, p.beta)],
                   wd=p.wd, clip=p.clip, device=rt.device, seed=rt.seed, run_dir=run_dir, log_dir=log_dir,
                   fingerprint=fp, checkpoint_every=p.checkpoint_every, config=model.cfg.to_dict())


def fit_lm(learn: Learner, p: LMParams, with_last_group: bool) -> None:
    """Optionally 1+ epochs of the embedding/decoder group alone, then everything."""
    if with_last_group and p.last_epochs:
        learn.freeze_to(-1)
        learn.fit(p.last_epochs, p.lr_last, schedule=p.schedule, phase="last-group")
    learn.unfreeze()
    n = len(learn.groups)
    lr = discriminative(p.lr, n) if p.discriminative else p.lr
    learn.fit(p.epochs, lr, schedule=p.schedule, phase="all")


def train_tokens(learn: Learner) -> int:
    return len(learn.train_dl.stream)


def lm_metrics(learn: Learner, t0: float, n_tokens: int, extra: dict) -> dict:
    m = learn.validate()
    return {"valid_loss": m["valid_loss"], "perplexity": math.exp(min(m["valid_loss"], 50.0)),
            "accuracy": m["accuracy"], "train_tokens": n_tokens, "seconds": round(time.time() - t0, 1), **extra}


# ---- stages -----------------------------------------------------------------------------------

def pretrain_lm(data_dir: Path, out_dir: Path, m: ModelParams, p: LMParams, rt: RuntimeParams,
                direction: Direction, run_dir: Path, log_dir: Path) -> dict:
    """Train an AWD-LSTM LM from scratch on the pretraining corpus (``data_dir``: itos.json, train/, valid/)."""
    setup(rt)
    t0 = time.time()
    itos = read_itos(data_dir / "itos.json")[:p.max_vocab]   # a smaller vocab: a cheaper softmax
    model = AWDLSTMLM(model_config(m, len(itos), p.drop_mult))
    fp = fingerprint("pretrain_lm", direction, dataclasses.asdict(m), dataclasses.asdict(p), rt.seed,
                     files=(data_dir / "itos.json", data_dir / "train" / "ids.npy"))
    learn = lm_learner(model, data_dir, p, rt, direction, run_dir, log_dir, fp)
    fit_lm(learn, p, with_last_group=False)
    metrics = lm_metrics(learn, t0, train_tokens(learn) * p.epochs, {"vocab": len(itos)})
    if is_main():                                      # under DDP rank 0 writes; every rank returns metrics
        save_lm(out_dir, learn.model, itos, {"direction": direction, "metrics": metrics})
    learn.finish()
    return metrics


def init_finetune_model(pre_dir: Path, itos: list[str], m: ModelParams, p: LMParams) -> tuple[AWDLSTMLM, dict]:
    """A fresh LM on the IMDb vocabulary; with ``p.pretrained`` its weights come from the pretrained LM
    with embedding rows and decoder bias remapped (unseen words: mean row)."""
    model = AWDLSTMLM(model_config(m, len(itos), p.drop_mult))
    if not p.pretrained:
        return model, {"vocab_matched": 0, "vocab_matched_frac": 0.0}
    pre = load_model(pre_dir / "lm.pt")
    shape = {k: pre["config"][k] for k in ("emb_sz", "n_hid", "n_layers")}
    if shape != {k: getattr(model.cfg, k) for k in shape}:
        raise DataError(f"{pre_dir / 'lm.pt'}: pretrained LM has {shape}, but imdb.model asks for "
                        f"emb_sz={m.emb_sz}, n_hid={m.n_hid}, n_layers={m.n_layers}")
    state, stats = remap_lm_state(pre["model"], read_itos(pre_dir / "itos.json"), itos)
    model.load_state_dict(state)
    return model, stats


def finetune_lm(pre_dir: Path, data_dir: Path, out_dir: Path, m: ModelParams, p: LMParams, rt: RuntimeParams,
                direction: Direction, run_dir: Path, log_dir: Path) -> dict:
    """Fine-tune the pretrained LM on the IMDb LM set (``data_dir``: itos.json, train/, valid/)."""
    if p.max_vocab is not None:
        raise ParamsError("imdb.finetune_lm.max_vocab: must be null (the IMDb vocabulary is the classifier's)")
    setup(rt)
    t0 = time.time()
    itos = read_itos(data_dir / "itos.json")
    model, stats = init_finetune_model(pre_dir, itos, m, p)
    files = (data_dir / "itos.json", data_dir / "train" / "ids.npy") + ((pre_dir / "lm.pt",) if p.pretrained else ())
    fp = fingerprint("finetune_lm", direction, dataclasses.asdict(m), dataclasses.asdict(p), rt.seed, files=files)
    learn = lm_learner(model, data_dir, p, rt, direction, run_dir, log_dir, fp)
    fit_lm(learn, p, with_last_group=p.pretrained)
    n_tok = train_tokens(learn) * (p.epochs + (p.last_epochs if p.pretrained else 0))
    metrics = lm_metrics(learn, t0, n_tok, {"vocab": len(itos), **stats})
    if is_main():
        save_lm(out_dir, learn.model, itos, {"direction": direction, "metrics": metrics})
    learn.finish()
    return metrics


def generate_samples(lm_dir: Path, out_md: Path, p: GenerateParams, rt: RuntimeParams) -> dict:
    """Continue each prompt ``n_samples`` times; write a Markdown report of prompts and continuations."""
    setup(rt)
    model, itos, extra = load_lm(lm_dir)
    if extra.get("direction", "fwd") != "fwd":
        raise DataError(f"{lm_dir}: generation needs a forward LM, got direction {extra.get('direction')!r}")
    stoi = {t: i for i, t in enumerate(itos)}
    banned = tuple(stoi[t] for t in ("xxunk", "xxpad", "xxbos", "xxfld") if t in stoi)
    lines = [f"# IMDb LM samples\n\nLM: `{lm_dir}` · temperature {p.temperature} · top-k {p.top_k} · "
             f"seed {p.seed} · {p.n_words} tokens each\n"]
    n_unk = 0
    for i, (prompt, toks) in enumerate(zip(p.prompts, tokenize_texts(list(p.prompts)))):
        ids = [stoi.get(t, 0) for t in toks]
        n_unk += sum(1 for t in ids if t == 0)
        lines.append(f"\n## Prompt {i + 1}\n\n> {prompt}\n")
        for s in range(p.n_samples):
            out = generate(model, ids, p.n_words, p.temperature, p.top_k, p.seed + 1000 * i + s, banned)
            lines.append(f"{s + 1}. …{detokenize([itos[j] for j in out])}\n")
    write_text(out_md, "\n".join(lines))
    return {"n_prompts": len(p.prompts), "prompt_unk_tokens": n_unk}
