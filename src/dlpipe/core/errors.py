"""Exceptions shared across dlpipe: bad input data gets one clear, located message."""
from __future__ import annotations


class ParamsError(ValueError):
    """A params.yaml section failed validation; the message names the full key path."""


class DataError(ValueError):
    """Bad input data; the message names the file/row/member and what was expected."""


class DownloadError(RuntimeError):
    """A dataset file could not be fetched and verified from any source; the message says how to fix it."""


def run_stage(main, argv=None) -> None:
    """Run a stage's ``main``; a known bad-input error ends the process with its one-line message.

    Tracebacks are for bugs. A params typo, a corrupt file or a failed download is the user's to fix,
    so it exits with status 1 and ``<stage>: <message>`` on stderr (the message names the key/file).
    """
    import sys
    from pathlib import Path

    stage = Path(sys.argv[0]).stem
    try:
        main(argv)
    except (ParamsError, DataError, DownloadError) as e:
        sys.exit(f"{stage}: {type(e).__name__}: {e}")
