"""Train the seq2seq translator (GRU encoder-decoder; bidir, teacher forcing, attention as params).

Usage: python stages/train_seq2seq.py --params params.yaml SRC_IDS TGT_IDS MODEL --log-dir DIR [--run-dir DIR] [--metrics FILE]
Reads params `seq2seq.model`, `seq2seq.train`, `runtime`. SRC_IDS/TGT_IDS: numericalize_pairs outputs
(itos.json, train/, valid/); MODEL gets the network and both vocabularies; DIR gets history.tsv, curves.png.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.seq2seq.train import train_seq2seq


def main(argv=None):
    return stage_main(__doc__, train_seq2seq, argv, ddp=True, run_dirs=True,
                      params={"m": "seq2seq.model", "p": "seq2seq.train", "rt": "runtime"},
                      args=[arg("src", type=Path, help="source-language id corpora"),
                            arg("tgt", type=Path, help="target-language id corpora"),
                            arg("model", type=Path, help="model.pt to write")])


if __name__ == "__main__":
    main()
