"""Fine-tune the pretrained LM on the IMDb LM set (vocabulary remap, last group first, then all).

Usage: python stages/finetune_lm.py --params params.yaml --direction fwd|bwd PRE_DIR DATA_DIR OUT_DIR
           --metrics M.json --log-dir DIR --run-dir DIR

PRE_DIR is a pretrain_lm output (lm.pt, itos.json); DATA_DIR holds the IMDb LM itos.json, train/,
valid/; OUT_DIR gets lm.pt, encoder.pt (for the classifier), itos.json, embeddings.npy.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.ulmfit.lm import finetune_lm
from dlpipe.tasks.ulmfit.params import DIRECTIONS


def main(argv=None):
    return stage_main(__doc__, finetune_lm, argv, ddp=True, run_dirs=True,
               params={"m": "imdb.model", "p": "imdb.finetune_lm", "rt": "runtime"},
               args=[arg("pre", type=Path, help="pretrained LM directory"),
                     arg("data", type=Path, help="IMDb LM corpus directory"),
                     arg("out", type=Path, help="fine-tuned LM output directory"),
                     arg("--direction", choices=DIRECTIONS, required=True)])


if __name__ == "__main__":
    main()
