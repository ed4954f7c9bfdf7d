"""Exceptions shared across dlpipe: bad input data gets one clear, located message."""
from __future__ import annotations


class DataError(ValueError):
    """Bad input data; the message names the file/row/member and what was expected."""


class DownloadError(RuntimeError):
    """A dataset file could not be fetched and verified from any source; the message says how to fix it."""
