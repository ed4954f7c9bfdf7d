"""DeViSE, stage ``devise_search``: nearest-neighbour search in word space, image -> words and
text -> images, top-1/top-5 over the whole vocabulary; report.md and two PNG grids."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dlpipe.core.atomic import write_text
from dlpipe.core.errors import DataError
from dlpipe.core.runtime import RuntimeParams, set_threads
from dlpipe.io.arrays import open_store
from dlpipe.io.checkpoint import load_model
from dlpipe.plots import md_table
from dlpipe.tasks.devise.params import SearchParams
from dlpipe.tasks.devise.train import matched_rows
from dlpipe.tasks.devise.vocab import read_class_vectors, read_vocab
from dlpipe.train.predict import predict
from dlpipe.vision.devise import match_class, topk_cosine
from dlpipe.vision.heads import head_from_state


def embed_images(head_path: Path, store, device: str = "auto") -> torch.Tensor:
    """The head's word-space vectors (n_rows, emb_sz) for every row of ``store``, in row order."""
    blob = load_model(head_path)
    head = head_from_state(blob["config"])
    load_model(head_path, head)
    if blob["extra"].get("backbone_sha256") != store.meta["backbone_sha256"]:
        raise DataError(f"{head_path}: trained on features of another backbone than {store.path}: rerun devise_train")
    return predict(head, (torch.from_numpy(c.astype(np.float32)) for c in store.iter_chunks()), device)


def search_keys(itos: list[str], p: SearchParams) -> np.ndarray:
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
           p: SearchParams) -> tuple[dict, list[list[str]], torch.Tensor, int]:
    """Top-k among the (matched) class names and over the whole vocabulary; (metrics, words, scores, n_keys)."""
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


def search(*, features: Path, vectors: Path, head: Path, itos: Path, emb: Path, raw: Path,
           index_dir: Path, out_dir: Path, p: SearchParams, rt: RuntimeParams) -> dict:
    """Nearest-neighbour evaluation over the whole vocabulary; writes report.md and two PNG grids."""
    from dlpipe.vision.plots import plot_image_rows, plot_prediction_grid
    set_threads(rt.num_threads)
    itos, emb, stoi = read_vocab(itos, emb)
    info, vecs = read_class_vectors(vectors)
    classes = info["classes"]
    store = open_store(Path(features) / "valid")
    rows = matched_rows(store, info["matched"])
    pred, y = embed_images(head, store, rt.device)[torch.from_numpy(rows)], store.labels[rows]   # (n, emb_sz), (n,)
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
    write_text(out_dir / "report.md", _report(metrics, classes, y, words, scores, found, missing, p,
                                              store.meta.get("backbone", "?"), store.meta.get("layer", "?")))
    return metrics


def _report(metrics, classes, y, words, scores, rows, missing, p: SearchParams, backbone: str, layer: str) -> str:
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
            + f"Features: backbone `{backbone}`, layer `{layer}`. Honest caveat: at sample scale the backbone is a "
              "small Darknet (CIFAR-10's 32-px photos, or MNIST digits) and the word vectors come from a small LM, "
              f"and there are only {metrics['n_valid']} validation images: one image moves top-1 by "
              f"{1 / max(metrics['n_valid'], 1):.3f}. The full-scale config (`backbone.weights: "
              "torchvision:resnet18`, a WikiText-103 LM) is the real experiment.\n\n"
            "## Nearest words per image (image -> text)\n\n![](image_to_words.png)\n\n"
            + md_table(["valid row", "class", f"nearest {p.topk} words (cos)"], img_rows)
            + "\n## Nearest images per word (text -> image)\n\n![](text_to_images.png)\n\n"
            + md_table(["query", "nearest images (true class, cos)"], text_rows)
            + (f"\nQueries not in the vocabulary: {', '.join(missing)}\n" if missing else ""))
