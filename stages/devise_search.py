"""DeViSE: nearest words over the whole vocabulary per image, nearest images per word.

Usage: python stages/devise_search.py --params params.yaml FEATURES VECTORS_DIR HEAD ITOS EMB RAW INDEX_DIR OUT_DIR --metrics M.json

OUT_DIR gets report.md, image_to_words.png and text_to_images.png.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.devise.search import search


def main(argv=None):
    return stage_main(__doc__, search, argv, params={"p": "vision.devise.search", "rt": "runtime"},
               args=[*(arg(n, type=Path) for n in ("features", "vectors", "head", "itos", "emb", "raw", "index_dir",
                                                  "out_dir"))])


if __name__ == "__main__":
    main()
