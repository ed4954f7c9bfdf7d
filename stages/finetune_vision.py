"""Fine-tune backbone + head on images: the head alone first, then everything with discriminative LRs.

Usage: python stages/finetune_vision.py --params params.yaml RAW INDEX_DIR MODEL_OUT
           --backbone backbone.pt --head head.pt --labels full|low --labeled labeled.npy
           --metrics M.json --log-dir DIR --run-dir DIR

RAW is the image folder or archive, INDEX_DIR holds index.csv (path,label,split); the feature layer
and image size come from the head. Phases are named ("head", "all") so an interrupted run resumes exactly.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.transfer.finetune import finetune


def main(argv=None):
    return stage_main(__doc__, finetune, argv, ddp=True, run_dirs=True, params={"p": "vision.finetune", "rt": "runtime"},
               args=[arg("raw", type=Path, help="images (as indexed)"), arg("index_dir", type=Path),
                     arg("model_out", type=Path), arg("--backbone", type=Path, required=True),
                     arg("--head", type=Path, required=True, help="head.pt from train_head"),
                     arg("--labels", choices=("full", "low"), required=True),
                     arg("--labeled", type=Path, help="index rows kept in the low-label run")])


if __name__ == "__main__":
    main()
