"""Decode the CIFAR-10 JPEG archive (read in place) into uint8 arrays.

Usage: python stages/decode_cifar.py --params params.yaml ARCHIVE OUT [--metrics FILE]
Reads params `cifar.decode`. OUT gets {train,test}_{images,labels}.npy and classes.txt. A folder that is
not train|test/<CIFAR-10 class>/, or an image that does not decode to 32x32 RGB, fails naming it.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.cifar.decode import decode_cifar


def main(argv=None):
    return stage_main(__doc__, decode_cifar, argv, params={"p": "cifar.decode"},
                      args=[arg("src", type=Path, help="the cifar10_jpg archive"), arg("out", type=Path, help="output directory")])


if __name__ == "__main__":
    main()
