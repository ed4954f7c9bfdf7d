"""Collect the outcome of every `@pytest.mark.fault` test, so docs/RELIABILITY.md is generated, not typed.

Mark a test (or a parametrized table of cases) with the fault category and what must happen:

    @pytest.mark.fault("Bad data", "DataError naming the file and row; nothing written")
    @pytest.mark.parametrize("case", [...], ids=[...])
    def test_bad_csv(case): ...

Each collected item becomes one row: category, case (the test's parametrize id or its name),
expected behaviour, outcome. `python tests/reliability_report.py` runs the marked tests with this
plugin and rewrites docs/RELIABILITY.md; tests/test_reliability_doc.py checks the document lists
exactly the cases the suite has.
"""
from __future__ import annotations

import json
import os

import pytest

ENV = "DLPIPE_RELIABILITY_JSON"


def fault_row(item: pytest.Item) -> dict | None:
    """The table row for a collected item, or None if it carries no fault marker."""
    mark = item.get_closest_marker("fault")
    if mark is None:
        return None
    category = mark.args[0] if mark.args else mark.kwargs["category"]
    expect = mark.args[1] if len(mark.args) > 1 else mark.kwargs.get("expect", "")
    callspec = getattr(item, "callspec", None)
    case = callspec.id if callspec is not None else item.originalname.removeprefix("test_").replace("_", " ")
    return {"category": category, "case": case, "expect": expect, "test": item.nodeid.split("[")[0]}


class _Recorder:
    def __init__(self, path: str):
        self.path = path
        self.rows: dict[str, dict] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            row = fault_row(item)
            if row is not None:
                self.rows[item.nodeid] = {**row, "outcome": "not run"}

    def pytest_runtest_logreport(self, report):
        row = self.rows.get(report.nodeid)
        if row is None:
            return
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            row["outcome"] = report.outcome

    def pytest_sessionfinish(self, session):
        with open(self.path, "w", encoding="utf-8") as fh:
            json.dump(list(self.rows.values()), fh, indent=1)


def pytest_configure(config):
    config.addinivalue_line("markers", "fault(category, expect): a bad-input or fault case listed in docs/RELIABILITY.md")
    path = os.environ.get(ENV)
    if path:
        config.pluginmanager.register(_Recorder(path), "dlpipe-reliability")
