"""Decode the test set greedily and with beam search; sacrebleu BLEU/chrF, the retrieval baseline,
samples.md and attention.png.

Usage: python stages/evaluate_seq2seq.py --params params.yaml MODEL SRC_IDS TEXT_DIR OUT_DIR [--metrics FILE]
Reads params `seq2seq.evaluate`, `runtime`.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.seq2seq.evaluate import evaluate_seq2seq


def main(argv=None):
    return stage_main(__doc__, evaluate_seq2seq, argv, params={"p": "seq2seq.evaluate", "rt": "runtime"},
                      args=[arg("model", type=Path, help="train_seq2seq's model.pt"),
                            arg("src", type=Path, help="source-language id corpora (its test/ split)"),
                            arg("text", type=Path, help="prepare_pairs' text/ directory"),
                            arg("out_dir", type=Path, help="samples.md, attention.png")])


if __name__ == "__main__":
    main()
