"""Index the super-resolution training photos: every image under the SRC folders, decoded and measured.

Usage: python stages/index_photos.py --params params.yaml OUT SRC [SRC ...] [--metrics FILE]
Reads params `superres.index`. OUT gets photos.csv (path, source, height, width, split). A file that does
not decode fails naming it; photos too small for a patch are left out and counted.
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.superres.index import index_photos


def main(argv=None):
    return stage_main(__doc__, index_photos, argv, params={"p": "superres.index"},
                      args=[arg("out", type=Path, help="output directory"),
                            arg("src", type=Path, nargs="+", help="photo folders (searched recursively)")])


if __name__ == "__main__":
    main()
