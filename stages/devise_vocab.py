"""DeViSE: match the class names to the LM's word vectors (class_vectors.npy, vocab_match.md).

Usage: python stages/devise_vocab.py --params params.yaml ITOS EMB FEATURES OUT_DIR --report vocab_match.md --metrics M.json

ITOS/EMB: the ULMFiT pretrained LM's itos.json and embeddings.npy; FEATURES: the feature stores (their classes).
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.devise.vocab import vocab


def main(argv=None):
    return stage_main(__doc__, vocab, argv, params={"p": "vision.devise.vocab"},
               args=[*(arg(n, type=Path) for n in ("itos", "emb", "features", "out_dir")),
                     arg("--report", type=Path, required=True, help="the match report (Markdown)")])


if __name__ == "__main__":
    main()
