"""Fetch one registry dataset into its output directory (mirror first, verified, extracted).

Usage: python stages/download.py NAME OUT_DIR

Set ``DLPIPE_MIRROR`` to a directory laid out like ``<mirror>/<name>/<file>`` (or a base URL) to
work offline; see ``dlpipe datasets`` for the names.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dlpipe.errors import DataError, DownloadError, run_stage
from dlpipe.registry import UnknownDataset
from dlpipe.io.download import fetch_dataset


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="registry dataset name")
    ap.add_argument("out", type=Path, help="output directory (declared in dvc.yaml)")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    try:
        metrics = fetch_dataset(args.name, out_dir=args.out)
    except (DownloadError, DataError, UnknownDataset) as e:  # one clear line, no traceback
        sys.exit(f"download {args.name}: {e}")
    print(json.dumps(metrics, sort_keys=True))


if __name__ == "__main__":
    run_stage(main)
