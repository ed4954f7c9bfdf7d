"""Run the frozen backbone over an indexed dataset into feature stores (stage ``precompute``).

Output: ``OUT/<split>/``, one :mod:`dlpipe.io.arrays` store per split, rows in a seeded pre-shuffled order,
with side arrays ``labels`` (class ids), ``order`` (row -> position in the split) and ``index_row``
(row -> row of index.csv; compare with labeled.npy for low-label runs). meta.json adds ``classes``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dlpipe.core.atomic import atomic_dir
from dlpipe.core.runtime import RuntimeParams, set_threads
from dlpipe.tasks.transfer.params import PrecomputeParams
from dlpipe.vision import images as I
from dlpipe.vision.features import BackboneParams, extract_features, load_backbone
from dlpipe.vision.image_data import read_index
from dlpipe.vision.sources import open_source


def precompute(*, src: Path, index: Path, model: Path | None, out: Path, bb: BackboneParams,
               p: PrecomputeParams, rt: RuntimeParams, dataset: str) -> dict:
    """One feature store per split of ``index/index.csv`` under ``out/<split>``; metrics per split."""
    set_threads(rt.num_threads)
    source = open_source(src)
    df = read_index(index)
    classes = sorted(df["label"].unique())
    source.prefetch(df["path"])                               # a .tgz: one pass over the archive
    body, info = load_backbone(bb.weights, model, p.cut.layer, bb.weights_path)
    cmode = "L" if info["in_ch"] == 1 else "RGB"              # grayscale/alpha images converted on load
    metrics = {}
    with atomic_dir(out) as tmp:   # all splits or nothing: a killed run leaves no half-filled `out`
        for split, g in df.groupby("split", sort=True):
            paths = g["path"].tolist()
            labels = g["label"].map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
            order = np.random.default_rng(p.seed).permutation(len(g))
            meta = {"dataset": dataset, "split": split, "classes": classes, "n_classes": len(classes),
                    "row_order": {"seed": p.seed, "permutation": "order.npy"}, "image_mode": cmode}
            metrics[split] = extract_features(
                body, info, lambda i: _load(source, paths[i], cmode, p.cut.size), order, p.cut.size, tmp / split, p.bs,
                p.dtype, dict(backend=p.backend, chunk_rows=p.chunk_rows, clevel=p.clevel, cname=p.cname), meta,
                {"labels": labels, "index_row": g.index.to_numpy(np.int64)}, desc=f"precompute {dataset}/{split}",
                n_workers=p.n_workers, device=rt.device)
    total = {k: sum(m[k] for m in metrics.values()) for k in ("rows", "raw_bytes", "bytes_on_disk", "seconds")}
    total["seconds"] = round(total["seconds"], 3)
    total["images_per_s"] = round(total["rows"] / max(total["seconds"], 1e-9), 1)
    total["compression_ratio"] = round(total["raw_bytes"] / max(total["bytes_on_disk"], 1), 3)
    return {**metrics, "total": total}


def _load(source, rel: str, mode: str, size: int) -> np.ndarray:
    """One image of ``source`` as uint8 (size, size, C)."""
    return I.load_image(source.open(rel), mode, size, source.name(rel))
