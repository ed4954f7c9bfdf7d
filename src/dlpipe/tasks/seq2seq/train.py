"""train_seq2seq: the encoder-decoder on numericalized pairs, Adam with one-cycle on the one Learner.

Inputs: ``numericalize_pairs``' id corpora of the source and target language (``<dir>/itos.json``,
``<dir>/{train,valid}/``). Teacher forcing is :class:`dlpipe.text.forcing.TeacherForcing`; the
validation loss and token accuracy are those of free-running decoding (the model's own previous
prediction fed back), the setting of evaluation. Output ``model.pt``: state_dict, the
:class:`Seq2SeqConfig`, and both vocabularies (``extra.src_itos``/``extra.tgt_itos``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from dlpipe.core import runtime
from dlpipe.core.errors import DataError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.stage import RunDirs
from dlpipe.io.checkpoint import save_model
from dlpipe.models.seq2seq import Seq2Seq, Seq2SeqConfig, load_embeddings, seq2seq_splitter
from dlpipe.tasks.seq2seq.params import ModelParams, TrainParams
from dlpipe.text.forcing import TeacherForcing
from dlpipe.text.corpus import load_corpus
from dlpipe.text.pairs import PairDataset, pair_collate, seq_loss, token_accuracy
from dlpipe.text.rules import BOS, EOS, PAD
from dlpipe.text.samplers import SortishSampler, SortSampler
from dlpipe.text.vocab import Vocab, read_itos
from dlpipe.train import EpochTimer, Learner, Optim, Phase, adamw, fingerprint, fit_and_save, make_learner, make_loader


def model_config(m: ModelParams, src: Vocab, tgt: Vocab) -> Seq2SeqConfig:
    """The model's shape from params and vocabularies (both put the special tokens at the same ids)."""
    if any(src.stoi[t] != tgt.stoi[t] for t in (PAD, BOS, EOS)):
        raise DataError("source and target vocabularies disagree on the ids of xxpad/xxbos/xxeos")
    return Seq2SeqConfig(src_vocab=len(src), tgt_vocab=len(tgt), emb_sz=m.emb_sz, n_hid=m.n_hid, n_layers=m.n_layers,
                         bidir=m.bidir, attention=m.attention, dropout=m.dropout, pad_idx=tgt.stoi[PAD],
                         bos_idx=tgt.stoi[BOS], eos_idx=tgt.stoi[EOS])


def pair_data(src_dir: Path, tgt_dir: Path, split: str) -> tuple[Vocab, Vocab, PairDataset]:
    src_v, tgt_v = Vocab.load(Path(src_dir) / "itos.json"), Vocab.load(Path(tgt_dir) / "itos.json")
    ds = PairDataset(load_corpus(Path(src_dir) / split), load_corpus(Path(tgt_dir) / split), tgt_v.stoi[EOS])
    return src_v, tgt_v, ds


def init_target_embedding(model: Seq2Seq, tgt: Vocab, vectors_dir: Path) -> dict:
    """Copy pretrained vectors (``itos.json`` + ``embeddings.npy``, e.g. the ULMFiT LM's) into the decoder's
    (tied) embedding for every shared token."""
    vectors_dir = Path(vectors_dir)
    path = vectors_dir / "embeddings.npy"
    if not path.is_file():
        raise DataError(f"seq2seq.train.emb_init: {path} not found (expected a directory with itos.json and embeddings.npy)")
    vecs = np.load(path)
    try:
        n = load_embeddings(model.decoder.emb, tgt.itos, read_itos(vectors_dir / "itos.json"), torch.from_numpy(vecs))
    except ValueError as e:
        raise DataError(f"seq2seq.train.emb_init: {path}: {e} (set seq2seq.model.emb_sz to match)") from None
    return {"emb_init_matched": n, "emb_init_sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16]}


def seq2seq_learner(src: Path, tgt: Path, m: ModelParams, p: TrainParams, rt: RuntimeParams, dirs: RunDirs,
                    cbs=()) -> tuple[Learner, dict]:
    """Pairs, loaders (sortish by source length), Seq2Seq and the Learner; returns ``(learn, extra)``
    with ``extra`` the vocabularies (and embedding-init facts) the model file keeps."""
    src_v, tgt_v, train_ds = pair_data(src, tgt, "train")
    _, _, valid_ds = pair_data(src, tgt, "valid")
    cfg = model_config(m, src_v, tgt_v)
    net = Seq2Seq(cfg)
    extra = {"src_itos": src_v.itos, "tgt_itos": tgt_v.itos,
             **(init_target_embedding(net, tgt_v, p.emb_init) if p.emb_init else {})}
    collate = partial(pair_collate, pad_idx=cfg.pad_idx)
    train_dl = make_loader(train_ds, p.bs, True, rt.seed, collate_fn=collate,
                           sampler=SortishSampler(train_ds.src.lengths, p.bs, rt.seed))
    valid_dl = make_loader(valid_ds, p.bs * 2, False, rt.seed, collate_fn=collate,
                           sampler=SortSampler(valid_ds.src.lengths))
    # a checkpoint resumes only this run: same params, seed and training ids
    fp = fingerprint("train_seq2seq", m, p, rt.seed, extra.get("emb_init_sha256"),
                     files=[Path(d) / "train" / "ids.npy" for d in (src, tgt)])
    learn = make_learner(net, train_dl, valid_dl, partial(seq_loss, pad_idx=cfg.pad_idx, label_smoothing=p.label_smoothing),
                         rt=rt, dirs=dirs, fingerprint=fp, metrics=[token_accuracy],
                         optim=Optim(opt_func=adamw(), splitter=seq2seq_splitter, wd=p.wd, clip=p.clip),
                         cbs=[TeacherForcing(p.teacher_forcing), *cbs], config=dataclasses.asdict(cfg))
    return learn, extra


def train_seq2seq(*, src: Path, tgt: Path, model: Path, m: ModelParams, p: TrainParams, rt: RuntimeParams,
                  dirs: RunDirs) -> dict:
    """Fit; returns free-running validation loss/accuracy, throughput and sizes."""
    runtime.apply(rt)
    timer = EpochTimer()
    learn, extra = seq2seq_learner(src, tgt, m, p, rt, dirs, cbs=[timer])
    net, cfg = learn.model, learn.model.cfg
    train_ds, valid_ds = learn.train_dl.dataset, learn.valid_dl.dataset
    t0 = time.perf_counter()
    final = fit_and_save(learn, [Phase("train", p.epochs, p.lr, sched_kwargs={"pct_start": p.pct_start, "div": p.div})],
                         lambda final: save_model(model, net, dataclasses.asdict(cfg), extra=extra))
    secs = timer.times.get("train", [])
    tgt_tokens = int(train_ds.tgt.lengths.sum())        # decoder steps per epoch: xxbos..vT predict v1..xxeos
    return {"valid_loss": round(final["valid_loss"], 4), "valid_token_accuracy": round(final["token_accuracy"], 4),
            "epoch_valid_loss": [round(r["valid_loss"], 4) for r in learn.recorder.rows],
            "train_seconds": round(time.perf_counter() - t0, 1),
            "target_tokens_per_s": round(tgt_tokens * len(secs) / max(sum(secs), 1e-9), 1),
            "n_train": len(train_ds), "n_valid": len(valid_ds), "src_vocab": cfg.src_vocab, "tgt_vocab": cfg.tgt_vocab,
            "n_params": sum(q.numel() for q in net.parameters()), "teacher_forcing": list(p.teacher_forcing),
            **{k: v for k, v in extra.items() if k.startswith("emb_init")}}

