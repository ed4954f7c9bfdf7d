"""Train the ULMFiT sentiment classifier: fine-tuned encoder + concat-pooling head, gradual unfreezing.

Usage: python stages/train_classifier.py --params params.yaml --direction fwd|bwd
           PRE_DIR FT_DIR ITOS DATA_DIR OUT_DIR --metrics M.json --log-dir DIR --run-dir DIR

PRE_DIR/FT_DIR: pretrained and fine-tuned LM directories (which one is used depends on the
ablation flags in imdb.train_classifier); ITOS: the IMDb LM vocabulary the classifier corpus uses;
DATA_DIR: train/ and valid/ id corpora with labels; OUT_DIR gets classifier.pt.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.classifier import train_classifier
from dlpipe.tasks.ulmfit.params import DIRECTIONS


def main(argv=None):
    return stage_main(__doc__, train_classifier, argv, ddp=True, run_dirs=True,
               params={"m": "imdb.model", "p": "imdb.train_classifier", "rt": "runtime"},
               args=[*(arg(n, type=Path) for n in ("pre", "ft", "itos", "data", "out")),
                     arg("--direction", choices=DIRECTIONS, required=True)])


if __name__ == "__main__":
    main()
