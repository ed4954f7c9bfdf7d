"""docs/RELIABILITY.md must list exactly the fault cases the suite has (it is generated, not typed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_reliability_doc_matches_suite(tmp_path):
    out = tmp_path / "faults.json"
    env = {**os.environ, "DLPIPE_RELIABILITY_JSON": str(out)}
    # Collection only: cheap, and yields every fault case with its category.
    subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-m", "fault", "-p", "no:cacheprovider"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    rows = json.loads(out.read_text())
    doc = (ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    missing = [f"{r['category']}: {r['case']}" for r in rows if f"`{r['test']}`" not in doc
               or f"| {r['case'].replace('|', chr(92) + '|')} |" not in doc]
    assert not missing, f"docs/RELIABILITY.md is stale; rerun tests/reliability_report.py. Missing: {missing[:10]}"
    assert f"**{len(rows)}**" in doc, "case count in docs/RELIABILITY.md differs from the suite"
    assert len(rows) >= 35, f"only {len(rows)} fault cases are marked"
