"""ULMFiT classifier: train with gradual unfreezing, evaluate (with a TF-IDF baseline), ensemble fwd+bwd.

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

import dataclasses
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dlpipe.errors import DataError
from dlpipe.io.atomic import atomic_path
from dlpipe.io.checkpoint import load_model, save_model
from dlpipe.models.awd_lstm import CLAS_DROPS, AWDLSTMConfig, remap_lm_state
from dlpipe.models.text_classifier import TextClassifier, classifier_splitter
from dlpipe.tasks.imdb_lm import Direction, ModelParams, RuntimeParams, fingerprint, model_config, read_itos, setup
from dlpipe.text.corpus import Corpus, load_corpus
from dlpipe.text.samplers import ClassifierDataset, SortishSampler, SortSampler, pad_collate
from dlpipe.train import Learner, accuracy, adamw, discriminative, is_main, make_loader

# freeze_to() argument of each gradual-unfreezing phase: last group, last two, last three, all
UNFREEZE = (-1, -2, -3, 0)


@dataclass(frozen=True)
class ClassifierParams:
    bs: int = field(metadata=dict(ge=1))
    bptt: int = field(metadata=dict(ge=2))
    max_len: int = field(metadata=dict(ge=1))       # tokens at the end of a review that get gradients
    drop_mult: float = field(metadata=dict(ge=0.0))
    lin_ftrs: list[int] = field(metadata=dict(ge=1, each=True))   # hidden sizes of the head
    lrs: list[float] = field(metadata=dict(gt=0.0, each=True))    # per unfreezing phase (last group's lr)
    epochs: list[int] = field(metadata=dict(ge=0, each=True))     # per unfreezing phase
    factor: float = field(metadata=dict(gt=0.0))   # discriminative lr ratio between groups (2.6)
    schedule: str = field(metadata=dict(choices=("stlr", "one_cycle", "cos", "const")))
    wd: float = field(metadata=dict(ge=0.0))
    clip: float | None = field(metadata=dict(gt=0.0))
    pretrained: bool
    finetune: bool
    gradual_unfreezing: bool
    discriminative: bool


@dataclass(frozen=True)
class EvalParams:
    bs: int = field(metadata=dict(ge=1))
    tfidf_ngrams: int = field(metadata=dict(ge=1))
    tfidf_min_df: int = field(metadata=dict(ge=1))
    tfidf_C: float = field(metadata=dict(gt=0.0))


def head_drops(p: ClassifierParams) -> list[float]:
    """fastai's head dropouts: the encoder's output_p before the first linear, 0.1 before the others."""
    return [CLAS_DROPS["output_p"] * p.drop_mult] + [0.1] * len(p.lin_ftrs)


def clas_loaders(data_dir: Path, bs: int, seed: int, pad_idx: int, backwards: bool, bptt: int):
    """Sortish-batched train loader and length-sorted valid loader, whole ``bptt`` chunks of pad first."""
    train, valid = load_corpus(data_dir / "train"), load_corpus(data_dir / "valid")
    collate = partial(pad_collate, pad_idx=pad_idx, pad_first=True, backwards=backwards, seq_len=bptt)
    train_dl = make_loader(ClassifierDataset(train), bs, True, seed, collate_fn=collate,
                           sampler=SortishSampler(train.lengths, bs, seed), drop_single=True)
    valid_dl = valid_loader(valid, bs, seed, collate)
    return train_dl, valid_dl, train, valid


def valid_loader(valid: Corpus, bs: int, seed: int, collate):
    return make_loader(ClassifierDataset(valid), bs, False, seed, collate_fn=collate, sampler=SortSampler(valid.lengths))


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


def fit_phases(learn: Learner, p: ClassifierParams) -> None:
    """ULMFiT's gradual unfreezing (one STLR phase per step) or one phase over everything."""
    n = len(learn.groups)
    plan = list(zip(UNFREEZE, p.lrs, p.epochs)) if p.gradual_unfreezing else [(0, p.lrs[-1], sum(p.epochs))]
    for k, (freeze, lr, epochs) in enumerate(plan):
        if epochs == 0:
            continue
        learn.freeze_to(max(freeze, -n) if freeze else 0)
        lrs = discriminative(lr, n, p.factor) if p.discriminative else lr
        name = "all" if freeze == 0 else f"last-{-freeze}"
        learn.fit(epochs, lrs, schedule=p.schedule, phase=name)


def train_classifier(pre_dir: Path, ft_dir: Path, itos_path: Path, data_dir: Path, out_dir: Path, m: ModelParams,
                     p: ClassifierParams, rt: RuntimeParams, direction: Direction, run_dir: Path,
                     log_dir: Path) -> dict:
    """Fine-tune a classifier on ``data_dir/{train,valid}``; saves ``out_dir/classifier.pt``."""
    if len(p.lrs) != len(UNFREEZE) or len(p.epochs) != len(UNFREEZE):
        raise DataError(f"imdb.train_classifier: lrs and epochs need {len(UNFREEZE)} entries (one per "
                        f"unfreezing phase), got {len(p.lrs)} and {len(p.epochs)}")
    setup(rt)
    t0 = time.time()
    itos = read_itos(itos_path)
    cfg = model_config(m, len(itos), p.drop_mult, CLAS_DROPS)
    train_dl, valid_dl, train, _ = clas_loaders(data_dir, p.bs, rt.seed, cfg.pad_idx, direction == "bwd", p.bptt)
    n_classes = int(train.labels.max()) + 1
    spec = dict(awd=cfg.to_dict(), n_classes=n_classes, lin_ftrs=list(p.lin_ftrs), head_drops=head_drops(p),
                bptt=p.bptt, max_len=p.max_len)
    model = TextClassifier(cfg, n_classes, p.lin_ftrs, spec["head_drops"], p.bptt, p.max_len)
    loaded = init_encoder(model, pre_dir, ft_dir, itos, p)
    fp = fingerprint("train_classifier", direction, dataclasses.asdict(m), dataclasses.asdict(p), rt.seed, loaded,
                     files=(itos_path, data_dir / "train" / "ids.npy"))
    learn = Learner(model, train_dl, valid_dl, F.cross_entropy, opt_func=adamw(betas=(0.8, 0.99)),
                    splitter=classifier_splitter, metrics=[accuracy], wd=p.wd, clip=p.clip, device=rt.device,
                    seed=rt.seed, run_dir=run_dir, log_dir=log_dir, fingerprint=fp, config=spec)
    fit_phases(learn, p)
    final = learn.validate()
    rows = next(c for c in learn.cbs if type(c).__name__ == "Recorder").rows
    per_phase = {f"accuracy_{r['phase']}": r["accuracy"] for r in rows}   # last epoch of each phase
    metrics = {"valid_loss": final["valid_loss"], "accuracy": final["accuracy"], **per_phase,
               **{k: v for k, v in loaded.items() if k != "encoder"}, "seconds": round(time.time() - t0, 1)}
    if is_main():
        save_model(out_dir / "classifier.pt", model, spec, {"direction": direction, "encoder": loaded["encoder"]})
    learn.finish()
    return metrics


def load_classifier(path: Path) -> tuple[TextClassifier, dict]:
    blob = load_model(path)
    s = blob["config"]
    model = TextClassifier(AWDLSTMConfig(**s["awd"]), s["n_classes"], s["lin_ftrs"], s["head_drops"],
                           s["bptt"], s["max_len"])
    load_model(path, model)
    return model, blob


@torch.no_grad()
def predict(model: TextClassifier, corpus: Corpus, bs: int, backwards: bool, device: torch.device) -> np.ndarray:
    """Class probabilities (n_docs, n_classes) in corpus order (batches run length-sorted)."""
    model.eval().to(device)
    collate = partial(pad_collate, pad_idx=model.cfg.pad_idx, pad_first=True, backwards=backwards,
                      seq_len=model.encoder.bptt)
    order = np.asarray(list(iter(SortSampler(corpus.lengths))))
    probs = np.zeros((len(corpus), model.head.layers[-1].out_features), dtype=np.float32)
    ds = ClassifierDataset(corpus)
    for start in range(0, len(order), bs):
        idx = order[start:start + bs]
        x, _ = collate([ds[int(i)] for i in idx])
        probs[idx] = torch.softmax(model(x.to(device)).float(), -1).cpu().numpy()
    return probs


def save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, arr)
