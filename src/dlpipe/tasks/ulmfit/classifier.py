"""ULMFiT classifier: the fine-tuned encoder + concat-pooling head, trained with gradual unfreezing.

Ablations (ULMFiT §5, as params of ``imdb.train_classifier``; each also works under ``dvc exp run -S``):

    pretrained: false        encoder randomly initialised: no LM at all ("from scratch")
    finetune: false          encoder = the pretrained (WikiText) LM, remapped, without IMDb LM
                             fine-tuning ("no LM fine-tuning")
    gradual_unfreezing: false  one phase training every group ("no gradual unfreezing")
    discriminative: false    one lr for all groups ("no discriminative LRs")

(ULMFiT's "no pretraining" — an LM fine-tuned on IMDb from random init — is
``imdb.finetune_lm.pretrained: false``.)
"""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlpipe.core.errors import DataError
from dlpipe.core.runtime import RuntimeParams
from dlpipe.core.runtime import apply as setup
from dlpipe.core.stage import RunDirs
from dlpipe.io.checkpoint import load_model, save_model
from dlpipe.models.awd_lstm import CLAS_DROPS, AWDLSTMConfig, remap_lm_state
from dlpipe.models.text_classifier import TextClassifier, classifier_splitter
from dlpipe.tasks.ulmfit.lm import model_config
from dlpipe.tasks.ulmfit.params import ClassifierParams, Direction, ModelParams
from dlpipe.text.corpus import Corpus, load_corpus
from dlpipe.text.samplers import ClassifierDataset, SortishSampler, SortSampler, pad_collate, sorted_batches
from dlpipe.text.vocab import read_itos
from dlpipe.train import (Learner, Optim, Phase, accuracy, adamw, discriminative, fingerprint, fit_and_save,
                          make_learner, make_loader, predict_batches)

# freeze_to() argument of each gradual-unfreezing phase: last group, last two, last three, all
UNFREEZE = (-1, -2, -3, 0)


def head_drops(p: ClassifierParams) -> list[float]:
    """fastai's head dropouts: the encoder's output_p before the first linear, 0.1 before the others."""
    return [CLAS_DROPS["output_p"] * p.drop_mult] + [0.1] * len(p.lin_ftrs)


def clas_collate(pad_idx: int, backwards: bool, bptt: int):
    """Whole ``bptt`` chunks of padding first (see :func:`pad_collate`)."""
    return partial(pad_collate, pad_idx=pad_idx, pad_first=True, backwards=backwards, seq_len=bptt)


def clas_loaders(data_dir: Path, bs: int, seed: int, pad_idx: int, backwards: bool, bptt: int,
                 train_split: str = "train"):
    """Sortish-batched train loader (over ``data_dir/<train_split>``) and length-sorted valid loader."""
    train, valid = load_corpus(data_dir / train_split), load_corpus(data_dir / "valid")
    collate = clas_collate(pad_idx, backwards, bptt)
    train_dl = make_loader(ClassifierDataset(train), bs, True, seed, collate_fn=collate,
                           sampler=SortishSampler(train.lengths, bs, seed), drop_single=True)
    valid_dl = make_loader(ClassifierDataset(valid), bs, False, seed, collate_fn=collate,
                           sampler=SortSampler(valid.lengths))
    return train_dl, valid_dl, train, valid


def init_encoder(model: TextClassifier, pre_dir: Path, ft_dir: Path, itos: list[str], p: ClassifierParams) -> dict:
    """Load the encoder per the ablation flags; returns what was loaded, for the metrics."""
    enc = model.encoder.encoder
    if not p.pretrained:
        return {"encoder": "random"}
    if p.finetune:
        if read_itos(ft_dir / "itos.json") != itos:
            raise DataError(f"{ft_dir / 'itos.json'}: fine-tuned LM vocabulary differs from the classifier's")
        load_model(ft_dir / "encoder.pt", enc)
        return {"encoder": "finetuned"}
    state, stats = remap_lm_state(load_model(pre_dir / "lm.pt")["model"], read_itos(pre_dir / "itos.json"), itos)
    enc.load_state_dict({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")})
    return {"encoder": "pretrained", **stats}


def unfreezing_phases(learn: Learner, p: ClassifierParams) -> list[Phase]:
    """ULMFiT's gradual unfreezing (one STLR phase per step) or one phase over everything."""
    n = len(learn.groups)
    plan = list(zip(UNFREEZE, p.lrs, p.epochs)) if p.gradual_unfreezing else [(0, p.lrs[-1], sum(p.epochs))]
    return [Phase("all" if freeze == 0 else f"last-{-freeze}", epochs,
                  discriminative(lr, n, p.factor) if p.discriminative else lr,
                  freeze_to=max(freeze, -n) if freeze else 0, schedule=p.schedule)
            for freeze, lr, epochs in plan]


def train_classifier(*, pre: Path, ft: Path, itos: Path, data: Path, out: Path, m: ModelParams,
                     p: ClassifierParams, rt: RuntimeParams, direction: Direction, dirs: RunDirs,
                     train_split: str = "train") -> dict:
    """Fine-tune a classifier on ``data/<train_split>`` (validating on ``data/valid``); saves ``out/classifier.pt``."""
    if len(p.lrs) != len(UNFREEZE) or len(p.epochs) != len(UNFREEZE):
        raise DataError(f"imdb.train_classifier: lrs and epochs need {len(UNFREEZE)} entries (one per "
                        f"unfreezing phase), got {len(p.lrs)} and {len(p.epochs)}")
    setup(rt)
    t0 = time.time()
    vocab = read_itos(itos)
    cfg = model_config(m, len(vocab), p.drop_mult, CLAS_DROPS)
    train_dl, valid_dl, train, _ = clas_loaders(data, p.bs, rt.seed, cfg.pad_idx, direction == "bwd", p.bptt,
                                                train_split)
    n_classes = int(train.labels.max()) + 1
    spec = dict(awd=cfg.to_dict(), n_classes=n_classes, lin_ftrs=list(p.lin_ftrs), head_drops=head_drops(p),
                bptt=p.bptt, max_len=p.max_len)
    model = TextClassifier(cfg, n_classes, p.lin_ftrs, spec["head_drops"], p.bptt, p.max_len)
    loaded = init_encoder(model, pre, ft, vocab, p)
    fp = fingerprint("train_classifier", direction, m, p, rt.seed, loaded,
                     files=(itos, data / train_split / "ids.npy"))
    learn = make_learner(model, train_dl, valid_dl, F.cross_entropy, rt=rt, dirs=dirs, fingerprint=fp,
                         optim=Optim(opt_func=adamw(betas=(0.8, 0.99)), splitter=classifier_splitter, wd=p.wd,
                                     clip=p.clip),
                         metrics=[accuracy], config=spec)
    final = fit_and_save(learn, unfreezing_phases(learn, p), lambda _: save_model(
        out / "classifier.pt", model, spec, {"direction": direction, "encoder": loaded["encoder"]}))
    per_phase = {f"accuracy_{r['phase']}": r["accuracy"] for r in learn.recorder.rows}   # last epoch of each phase
    return {"valid_loss": final["valid_loss"], "accuracy": final["accuracy"], "n_train": len(train), **per_phase,
            **{k: v for k, v in loaded.items() if k != "encoder"}, "seconds": round(time.time() - t0, 1)}


def load_classifier(path: Path) -> tuple[TextClassifier, dict]:
    blob = load_model(path)
    s = blob["config"]
    model = TextClassifier(AWDLSTMConfig(**s["awd"]), s["n_classes"], s["lin_ftrs"], s["head_drops"],
                           s["bptt"], s["max_len"])
    load_model(path, model)
    return model, blob


def predict_probs(model: TextClassifier, corpus: Corpus, bs: int, backwards: bool, device: str) -> np.ndarray:
    """Class probabilities (n_docs, n_classes) in corpus order (batches run length-sorted)."""
    probs = np.zeros((len(corpus), model.head.layers[-1].out_features), dtype=np.float32)
    batches = list(sorted_batches(corpus, bs, clas_collate(model.cfg.pad_idx, backwards, model.encoder.bptt)))
    for (idx, _), logits in zip(batches, predict_batches(model, (x for _, x in batches), device)):
        probs[idx] = torch.softmax(logits, -1).numpy()
    return probs
