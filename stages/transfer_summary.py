"""Gather the vision transfer-learning demo into one metrics file: accuracies, epoch times, feature store.

Usage: python stages/transfer_summary.py --metrics OUT_JSON --eval NAME=metrics.json ... --train NAME=metrics.json ...
           [--precompute reports/vision/precompute/<dataset>/metrics.json]
"""
from pathlib import Path

from dlpipe.core.stage import arg, stage_main
from dlpipe.tasks.transfer.summary import transfer_summary


def _pair(s: str) -> tuple[str, Path]:
    name, _, path = s.partition("=")
    return name, Path(path)


def main(argv=None):
    return stage_main(__doc__, transfer_summary, argv,
               args=[arg("--eval", dest="evals", type=_pair, action="append", default=[], help="NAME=evaluate metrics.json"),
                     arg("--train", dest="trains", type=_pair, action="append", default=[], help="NAME=training metrics.json"),
                     arg("--precompute", type=Path, help="precompute metrics.json")])


if __name__ == "__main__":
    main()
