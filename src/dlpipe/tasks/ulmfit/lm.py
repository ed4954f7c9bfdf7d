"""ULMFiT language models: pretrain on general English, fine-tune on IMDb.

Outputs of an LM directory (``save_lm``)::

    lm.pt           save_model: AWDLSTMLM state_dict + AWDLSTMConfig (+ extra: direction, metrics)
    encoder.pt      save_model: the AWDLSTMEncoder alone (what the classifier loads)
    itos.json       the vocabulary the rows of the embedding follow
    embeddings.npy  float32 (vocab, emb_sz): the input embedding (= tied decoder) — read with
                    itos.json by the DeViSE task as word vectors; always written together.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from dlpipe.core.atomic import atomic_dir, write_text
from dlpipe.core.errors import DataError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.runtime import apply as setup
from dlpipe.core.stage import RunDirs
from dlpipe.io.checkpoint import load_model, save_model
from dlpipe.models.awd_lstm import LM_DROPS, AWDLSTMConfig, AWDLSTMLM, lm_splitter, remap_lm_state
from dlpipe.tasks.ulmfit.params import Direction, FinetuneLMParams, LMTrainParams, ModelParams, PretrainParams
from dlpipe.text.callbacks import RNNCallback, RNNRegularizer, lm_loss
from dlpipe.text.corpus import Corpus, load_corpus
from dlpipe.text.lm_data import LMLoader
from dlpipe.text.sampled import SampledSoftmaxLoss, unigram_q
from dlpipe.text.vocab import read_itos
from dlpipe.train import Learner, Optim, Phase, accuracy, adamw, discriminative, fingerprint, fit_and_save, make_learner


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
    return corpus.subset(np.sort(perm[:n_docs]))


def lm_learner(model: AWDLSTMLM, data_dir: Path, p: LMTrainParams, rt: RuntimeParams, direction: Direction,
               dirs: RunDirs, fp: str, max_vocab: int | None = None) -> Learner:
    """Learner over ``data_dir/{train,valid}`` token streams (reversed for ``bwd``)."""
    back = direction == "bwd"
    train = cap_vocab(subsample(load_corpus(data_dir / "train"), p.max_tokens, rt.seed), max_vocab)
    valid = cap_vocab(load_corpus(data_dir / "valid"), max_vocab)
    train_dl = LMLoader(train, p.bs, p.bptt, rt.seed, shuffle=True, backwards=back)
    valid_dl = LMLoader(valid, p.bs, p.bptt, rt.seed, backwards=back, random_bptt=False)
    loss = lm_loss if p.sampled_k is None else SampledSoftmaxLoss(model, unigram_q(train.ids, model.cfg.vocab_sz),
                                                                  p.sampled_k)
    return make_learner(model, train_dl, valid_dl, loss, rt=rt, dirs=dirs, fingerprint=fp,
                        optim=Optim(opt_func=adamw(), splitter=lm_splitter, wd=p.wd, clip=p.clip),
                        metrics=[accuracy], cbs=[RNNCallback(), RNNRegularizer(p.alpha, p.beta)],
                        checkpoint_every=p.checkpoint_every, config=model.cfg.to_dict())


def lm_phases(learn: Learner, p: LMTrainParams, last_group: tuple[int, float] | None = None) -> list[Phase]:
    """Optionally ``last_group = (epochs, lr)`` of the embedding/decoder group alone, then every group."""
    n = len(learn.groups)
    all_lr = discriminative(p.lr, n) if p.discriminative else p.lr
    first = [Phase("last-group", last_group[0], last_group[1], freeze_to=-1, schedule=p.schedule)] if last_group else []
    return first + [Phase("all", p.epochs, all_lr, schedule=p.schedule)]


def lm_metrics(final: dict, t0: float, n_tokens: int, extra: dict) -> dict:
    return {"valid_loss": final["valid_loss"], "perplexity": math.exp(min(final["valid_loss"], 50.0)),
            "accuracy": final["accuracy"], "train_tokens": n_tokens, "seconds": round(time.time() - t0, 1), **extra}


def _train_and_save(learn: Learner, phases: list[Phase], out: Path, itos: list[str], direction: Direction,
                    t0: float, n_epochs: int, extra: dict) -> dict:
    """Fit the phases; rank 0 saves the LM with its metrics (timing left out: the files stay byte-stable)."""
    n_tokens = len(learn.train_dl.stream) * n_epochs
    metrics: dict = {}

    def save(final: dict) -> None:
        metrics.update(lm_metrics(final, t0, n_tokens, extra))
        save_lm(out, learn.model, itos, {"direction": direction,
                                         "metrics": {k: v for k, v in metrics.items() if k != "seconds"}})

    final = fit_and_save(learn, phases, save)
    return metrics or lm_metrics(final, t0, n_tokens, extra)


# ---- stages -----------------------------------------------------------------------------------

def pretrain_lm(*, data: Path, out: Path, m: ModelParams, p: PretrainParams, rt: RuntimeParams,
                direction: Direction, dirs: RunDirs) -> dict:
    """Train an AWD-LSTM LM from scratch on the pretraining corpus (``data``: itos.json, train/, valid/)."""
    setup(rt)
    t0 = time.time()
    itos = read_itos(data / "itos.json")[:p.max_vocab]       # a smaller vocab: a cheaper softmax
    model = AWDLSTMLM(model_config(m, len(itos), p.drop_mult))
    fp = fingerprint("pretrain_lm", direction, m, p, rt.seed, files=(data / "itos.json", data / "train" / "ids.npy"))
    learn = lm_learner(model, data, p, rt, direction, dirs, fp, max_vocab=p.max_vocab)
    return _train_and_save(learn, lm_phases(learn, p), out, itos, direction, t0, p.epochs, {"vocab": len(itos)})


def init_finetune_model(pre_dir: Path, itos: list[str], m: ModelParams, p: FinetuneLMParams) -> tuple[AWDLSTMLM, dict]:
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


def finetune_lm(*, pre: Path, data: Path, out: Path, m: ModelParams, p: FinetuneLMParams, rt: RuntimeParams,
                direction: Direction, dirs: RunDirs) -> dict:
    """Fine-tune the pretrained LM on the IMDb LM set (``data``: itos.json, train/, valid/)."""
    setup(rt)
    t0 = time.time()
    itos = read_itos(data / "itos.json")
    model, stats = init_finetune_model(pre, itos, m, p)
    files = (data / "itos.json", data / "train" / "ids.npy") + ((pre / "lm.pt",) if p.pretrained else ())
    fp = fingerprint("finetune_lm", direction, m, p, rt.seed, files=files)
    learn = lm_learner(model, data, p, rt, direction, dirs, fp)
    last = (p.last_epochs, p.lr_last) if p.pretrained and p.last_epochs else None
    n_epochs = p.epochs + (p.last_epochs if p.pretrained else 0)
    return _train_and_save(learn, lm_phases(learn, p, last), out, itos, direction, t0, n_epochs,
                           {"vocab": len(itos), **stats})
