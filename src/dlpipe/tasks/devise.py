"""DeViSE stages: class names -> word vectors, a cosine-loss head on precomputed features, and search.

::

    vocab    itos.json + embeddings.npy (the ULMFiT LM's) + class names -> class_vectors.npy, vocab_match.md
    train    features/{train,valid} + class vectors -> head.pt  (regresses each image's class vector, 1 - cos)
    search   head + features + the whole vocabulary -> top-1/top-5, nearest words per image, text -> image
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from dlpipe.errors import DataError
from dlpipe.io.arrays import open_store, save_npy
from dlpipe.io.atomic import write_text
from dlpipe.io.checkpoint import load_model, save_model
from dlpipe import runtime
from dlpipe.runtime import set_threads
from dlpipe.runtime import RuntimeParams
from dlpipe.train import Learner, adamw, is_main
from dlpipe.vision.devise import class_vectors, cosine_loss, cosine_sim, explain_miss, match_class
from dlpipe.vision.feature_data import ChunkedFeatureLoader
from dlpipe.vision.heads import HeadParams, head_from_state, head_state, make_head
from dlpipe.vision.plots import md_table


@dataclass(frozen=True)
class DeviseParams:
    class_words: dict[str, list[str]]     # class -> candidate phrases tried in order (synonyms); default: its name
    search_vocab: Literal["alpha", "all"]  # alpha: only alphabetic tokens are search results
    exclude: list[str]                    # tokens never returned (fastai special tokens)
    head: HeadParams                      # the head's architecture (n_out = word-vector size)
    bs: int = field(metadata=dict(ge=2))             # the head's BatchNorm needs two rows per batch
    epochs: int = field(metadata=dict(ge=1))
    lr: float = field(metadata=dict(gt=0.0))
    pct_start: float = field(metadata=dict(gt=0.0, lt=1.0))
    wd: float = field(metadata=dict(ge=0.0))
    topk: int = field(metadata=dict(ge=1))            # nearest words per image
    queries: list[str]                                # extra text -> image queries besides the class words
    n_images: int = field(metadata=dict(ge=1))        # nearest images per query
    chunk: int = field(metadata=dict(ge=1))           # vocabulary rows per matrix product


def read_vocab(itos_path: Path, emb_path: Path) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """(itos, embeddings (vocab, emb_sz), lower-cased stoi where the most frequent casing wins).

    itos is in frequency order, so the first (lower-cased) occurrence of a word is its most
    common casing (the 2017 lesson 9 rule).
    """
    itos = json.loads(Path(itos_path).read_text())
    emb = np.load(emb_path)
    if emb.ndim != 2 or emb.shape[0] != len(itos):
        raise DataError(f"{emb_path}: expected embeddings of shape ({len(itos)}, emb_sz) to match {itos_path}, "
                        f"got {emb.shape}")
    stoi: dict[str, int] = {}
    for i, w in enumerate(itos):
        stoi.setdefault(w.lower(), i)
    return itos, emb.astype(np.float32), stoi


def vocab(itos_path: Path, emb_path: Path, features: Path, out_dir: Path, report: Path, p: DeviseParams) -> dict:
    """Match the feature store's class names to the vocabulary; write class_vectors.npy + the match report."""
    itos, emb, stoi = read_vocab(itos_path, emb_path)
    classes = list(open_store(Path(features) / "train").meta["classes"])
    unknown = sorted(set(p.class_words) - set(classes))
    if unknown:
        raise DataError(f"params.yaml: vision.devise.class_words: {unknown} are not classes of {features} ({classes})")
    matches = [match_class(c, list(p.class_words.get(c, [])), stoi) for c in classes]
    rows = [(m.name, ", ".join(m.tried), m.phrase or "—", " ".join(m.tokens) or "—", "yes" if m.matched else "**no**")
            for m in matches]
    n_ok = sum(m.matched for m in matches)
    text = (f"# DeViSE: class names matched to the LM vocabulary\n\n"
            f"Vocabulary: {len(itos):,} tokens, {emb.shape[1]}-d embeddings of the ULMFiT LM (`{emb_path}`).\n"
            f"Matched **{n_ok} of {len(classes)}** classes ({len(classes) - n_ok} unmatched). Rules: lower-case; "
            "try the word, its singular, its plural; a multi-word phrase is the mean of its words and needs all "
            "of them; candidates come from `vision.devise.class_words` (default: the class name).\n"
            "(The 2018 lecture matched 49,469 WordNet synsets against fastText's vocabulary.)\n\n"
            + md_table(["class", "candidates tried", "phrase used", "tokens", "matched"], rows))
    write_text(report, text)
    missed = [f"class '{m.name}': vision.devise.class_words.{m.name} tried {explain_miss(m, stoi)}"
              for m in matches if not m.matched]
    where = f"the LM vocabulary {itos_path} ({len(itos):,} tokens)"
    if n_ok < 2:
        raise DataError(f"params.yaml: vision.devise.class_words: only {n_ok} of the {len(classes)} classes "
                        f"{classes} have a word in {where}; DeViSE needs two or more. {'; '.join(missed)}. "
                        f"List words the vocabulary has under those keys (match report: {report})")
    shared = _shared_tokens([m for m in matches if m.matched])
    if shared:
        raise DataError(f"params.yaml: vision.devise.class_words: {shared}: identical word vectors cannot tell "
                        "classes apart; give each class its own words")
    if missed:   # the lecture's rule: classes without a word vector are left out, loudly
        warnings.warn(f"{len(missed)} of {len(classes)} classes have no word in {where}; their images are left "
                      f"out of DeViSE: {'; '.join(missed)}", stacklevel=2)
    vecs = np.zeros((len(classes), emb.shape[1]), np.float32)   # unmatched classes: zero rows, never used
    ok = [i for i, m in enumerate(matches) if m.matched]
    vecs[ok] = class_vectors([matches[i] for i in ok], emb, stoi)
    out_dir = Path(out_dir)
    save_npy(out_dir / "class_vectors.npy", vecs)
    write_text(out_dir / "classes.json", json.dumps({"classes": classes, "matched": [m.matched for m in matches],
                                                     "tokens": [list(m.tokens) for m in matches]}, indent=2) + "\n")
    return {"n_classes": len(classes), "n_matched": n_ok, "n_unmatched": len(classes) - n_ok,
            "vocab_size": len(itos), "emb_sz": int(emb.shape[1])}


def _shared_tokens(matches: list) -> str:
    """Names the first two matched classes with the same words (hence the same vector), else ''."""
    seen: dict[tuple[str, ...], str] = {}
    for m in matches:
        key = tuple(sorted(m.tokens))
        if key in seen:
            return f"classes '{seen[key]}' and '{m.name}' both use the words {' '.join(m.tokens)!r}"
        seen[key] = m.name
    return ""


def read_class_vectors(vectors_dir: Path) -> tuple[dict, np.ndarray]:
    """(classes.json, class_vectors.npy) from the vocab stage."""
    info = json.loads((Path(vectors_dir) / "classes.json").read_text())
    return info, np.load(Path(vectors_dir) / "class_vectors.npy")


def matched_rows(store, matched: list[bool]) -> np.ndarray:
    """Store rows whose class has a word vector (images of unmatched classes are left out)."""
    return np.flatnonzero(np.asarray(matched)[store.labels])


def _loaders(features: Path, vecs: np.ndarray, matched: list[bool], bs: int, seed: int):
    train = open_store(Path(features) / "train")
    valid = open_store(Path(features) / "valid", expect={"backbone_sha256": train.meta["backbone_sha256"],
                                                         "layer": train.meta["layer"]})
    # targets: each row's class vector (n_rows, emb_sz)
    return (train, ChunkedFeatureLoader(train, vecs[train.labels], bs, seed=seed, rows=matched_rows(train, matched),
                                        drop_single=True),
            ChunkedFeatureLoader(valid, vecs[valid.labels], bs * 2, shuffle=False, rows=matched_rows(valid, matched)))


def train(features: Path, vectors_dir: Path, head_out: Path, log_dir: Path, run_dir: Path | None,
          p: DeviseParams, rt: RuntimeParams) -> dict:
    """Fit a head mapping stored features to class word vectors with the cosine loss (one-cycle)."""
    runtime.apply(rt)
    info, vecs = read_class_vectors(vectors_dir)
    store, train_dl, valid_dl = _loaders(features, vecs, info["matched"], p.bs, rt.seed)
    row_shape = tuple(store.shape[1:])
    head = make_head(p.head.config(row_shape[0], vecs.shape[1]), row_shape)
    fp = json.dumps([repr(p), repr(rt), store.meta["backbone_sha256"], vecs.shape])
    learn = Learner(head, train_dl, valid_dl, cosine_loss, opt_func=adamw(), splitter=head.splitter,
                    metrics=[cosine_sim], wd=p.wd, device=rt.device, seed=rt.seed, run_dir=run_dir, log_dir=log_dir,
                    fingerprint=fp)
    learn.fit(p.epochs, lr=p.lr, schedule="one_cycle", phase="devise", pct_start=p.pct_start)
    m = learn.validate()
    if is_main():
        save_model(head_out, head, head_state(head), extra={"backbone_sha256": store.meta["backbone_sha256"],
                                                             "layer": store.meta["layer"]})
    learn.finish()
    return {"valid_cosine_loss": round(m["valid_loss"], 5), "valid_cosine_sim": round(m["cosine_sim"], 5),
            "n_train": train_dl.n_rows, "n_valid": valid_dl.n_rows}


@torch.no_grad()
def embed_images(head_path: Path, store) -> torch.Tensor:
    """The head's word-space vectors (n_rows, emb_sz) for every row of ``store``, in row order."""
    blob = load_model(head_path)
    head = head_from_state(blob["config"])
    load_model(head_path, head)
    if blob["extra"].get("backbone_sha256") != store.meta["backbone_sha256"]:
        raise DataError(f"{head_path}: trained on features of another backbone than {store.path}: rerun devise_train")
    head.eval()
    return torch.cat([head(torch.from_numpy(c.astype(np.float32))) for c in store.iter_chunks()])


def search_keys(itos: list[str], p: DeviseParams) -> np.ndarray:
    """Vocabulary indices that search may return (whole vocabulary minus specials / non-words)."""
    skip = set(p.exclude)
    return np.array([i for i, w in enumerate(itos)
                     if w not in skip and (p.search_vocab == "all" or w.isalpha())], dtype=np.int64)


def _images_for(store, raw: Path, index_dir: Path, rows) -> list[np.ndarray]:
    """(C, H, W) uint8 images of store rows, decoded as precompute did."""
    from dlpipe.vision import images as I
    from dlpipe.vision.image_data import read_index
    df, root = read_index(index_dir), I.dataset_root(raw)
    idx = store.array("index_row")[np.asarray(rows)]
    mode, size = store.meta["image_mode"], store.meta["input_size"]
    return [I.load_image(root / df.loc[i, "path"], mode, size).transpose(2, 0, 1) for i in idx]


def _query_vectors(words: list[str], emb: np.ndarray, stoi: dict[str, int]) -> tuple[list[str], np.ndarray, list[str]]:
    """(matched queries, their vectors, unmatched queries); a phrase is the mean of its words."""
    ok, vecs, missing = [], [], []
    for q in words:
        m = match_class(q, [], stoi)
        if m.matched:
            ok.append(q)
            vecs.append(emb[[stoi[t] for t in m.tokens]].mean(0))
        else:
            missing.append(q)
    return ok, np.stack(vecs) if vecs else np.zeros((0, emb.shape[1]), np.float32), missing


def _score(pred: torch.Tensor, y: np.ndarray, info: dict, vecs: np.ndarray, emb: np.ndarray, itos: list[str],
           p: DeviseParams) -> tuple[dict, list[list[str]], torch.Tensor, int]:
    """Top-k among the (matched) class names and over the whole vocabulary; (metrics, words, scores, n_keys)."""
    from dlpipe.vision.devise import topk_cosine
    ok = np.flatnonzero(info["matched"])                                    # classes that have a vector
    cls = torch.from_numpy(vecs[ok])
    _, ci = topk_cosine(pred, cls, min(5, len(ok)))
    cls_top = ok[ci.numpy()]                                                # (n, <=5) class ids
    keys = search_keys(itos, p)
    scores, top = topk_cosine(pred, torch.from_numpy(emb[keys]), max(5, p.topk), chunk=p.chunk)
    words = [[itos[keys[j]] for j in row] for row in top.tolist()]          # nearest words per image
    hit = np.array([[w.lower() in info["tokens"][c] for w in ws[:5]] for ws, c in zip(words, y)])
    true_cos = torch.nn.functional.cosine_similarity(pred, torch.from_numpy(vecs[y]))
    return {"top1_class": round(float((cls_top[:, 0] == y).mean()), 5),
            "top5_class": round(float((cls_top == y[:, None]).any(1).mean()), 5),
            "top1_vocab": round(float(hit[:, 0].mean()), 5), "top5_vocab": round(float(hit.any(1).mean()), 5),
            "mean_cos_true": round(float(true_cos.mean()), 5), "n_valid": int(len(y)),
            "vocab_searched": int(len(keys)), "n_classes": int(len(ok))}, words, scores, len(keys)


def search(features: Path, vectors_dir: Path, head_path: Path, itos_path: Path, emb_path: Path, raw: Path,
           index_dir: Path, out_dir: Path, p: DeviseParams, rt: RuntimeParams) -> dict:
    """Nearest-neighbour evaluation over the whole vocabulary; writes report.md and two PNG grids."""
    from dlpipe.vision.devise import topk_cosine
    from dlpipe.vision.plots import plot_image_rows, plot_prediction_grid
    set_threads(rt.num_threads)
    itos, emb, stoi = read_vocab(itos_path, emb_path)
    info, vecs = read_class_vectors(vectors_dir)
    classes = info["classes"]
    store = open_store(Path(features) / "valid")
    rows = matched_rows(store, info["matched"])
    pred, y = embed_images(head_path, store)[torch.from_numpy(rows)], store.labels[rows]   # (n, emb_sz), (n,)
    metrics, words, scores, _ = _score(pred, y, info, vecs, emb, itos, p)
    out_dir = Path(out_dir)
    imgs = _images_for(store, raw, index_dir, rows)
    plot_prediction_grid(imgs, [ws[0] for ws in words], [classes[c] for c in y], out_dir / "image_to_words.png",
                         title="DeViSE nearest word")
    phrases = [" ".join(t) for t, m in zip(info["tokens"], info["matched"]) if m]
    qwords, qvecs, missing = _query_vectors([*phrases, *p.queries], emb, stoi)
    qs, qi = topk_cosine(torch.from_numpy(qvecs), pred, p.n_images)
    found = [(q, [imgs[j] for j in qi[r].tolist()],
              [f"{classes[y[j]]} {v:.2f}" for j, v in zip(qi[r].tolist(), qs[r].tolist())]) for r, q in enumerate(qwords)]
    plot_image_rows(found, out_dir / "text_to_images.png", title="DeViSE text -> image (caption: true class, cos)")
    write_text(out_dir / "report.md", _report(metrics, classes, y, words, scores, found, missing, p))
    return metrics


def _report(metrics, classes, y, words, scores, rows, missing, p: DeviseParams) -> str:
    img_rows = [(i, classes[c], ", ".join(f"{w} ({s:.2f})" for w, s in zip(ws[:p.topk], sc[:p.topk].tolist())))
                for i, (c, ws, sc) in enumerate(zip(y, words, scores))]
    text_rows = [(q, ", ".join(caps)) for q, _, caps in rows]
    return ("# DeViSE: nearest-neighbour search in word-vector space\n\n"
            f"Images of the valid split ({metrics['n_valid']}) mapped into the LM's word space by a head trained with "
            f"the cosine loss; neighbours by cosine over {metrics['vocab_searched']:,} vocabulary words "
            f"(`search_vocab: {p.search_vocab}`, specials excluded).\n\n"
            + md_table(["metric", "value"], sorted(metrics.items()))
            + "\n`top*_class`: nearest class vector among the class names (top-5 is trivially 1 with fewer than 6 "
              "classes); `top*_vocab`: a class's own token among the nearest words of the WHOLE vocabulary.\n\n"
              "Honest caveat: at sample scale the backbone is a small Darknet pretrained on MNIST digits and the "
              "word vectors come from a small LM trained on WikiText-2; features of animal photos from a digit "
              "model are weak, so expect near-chance numbers. The full-scale config (`backbone.weights: "
              "torchvision:resnet18`, a WikiText-103 LM) is the real experiment.\n\n"
            "## Nearest words per image (image -> text)\n\n![](image_to_words.png)\n\n"
            + md_table(["valid row", "class", f"nearest {p.topk} words (cos)"], img_rows)
            + "\n## Nearest images per word (text -> image)\n\n![](text_to_images.png)\n\n"
            + md_table(["query", "nearest images (true class, cos)"], text_rows)
            + (f"\nQueries not in the vocabulary: {', '.join(missing)}\n" if missing else ""))
