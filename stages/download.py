"""Fetch one registry dataset into its output directory (mirror first, verified, extracted).

Usage: python stages/download.py NAME OUT_DIR

Set ``DLPIPE_MIRROR`` to a directory laid out like ``<mirror>/<name>/<file>`` (or a base URL) to
work offline; see ``dlpipe datasets`` for the names.
"""
import json
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.io.download import fetch_dataset


def main(argv=None):
    m = stage_main(__doc__, fetch_dataset, argv, metrics=False,
                   args=[arg("name", help="registry dataset name"),
                         arg("out_dir", type=Path, help="output directory (declared in dvc.yaml)")])
    print(json.dumps(m, sort_keys=True))
    return m


if __name__ == "__main__":
    main()
