"""Index one image dataset: verify every image decodes, make a seeded split and a low-label subset.

Usage: python stages/index_images.py --params params.yaml --format folder|idx SRC OUT --metrics METRICS

  folder: SRC is an ImageNet-style tree (<split>/<class>/*.jpg or <class>/*.jpg);
          writes OUT/index.csv (path,label,split) and OUT/labeled.npy (index rows of the labeled subset).
  idx:    SRC holds the MNIST t10k IDX files; writes OUT/{train,valid}_{images,labels}.npy.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.vision.index import index_images


def main(argv=None):
    return stage_main(__doc__, index_images, argv, params={"p": "vision.index"},
               args=[arg("--format", choices=("folder", "idx"), required=True),
                     arg("src", type=Path, help="raw dataset directory"), arg("out", type=Path, help="output directory")])


if __name__ == "__main__":
    main()
