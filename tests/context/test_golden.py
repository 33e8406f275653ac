"""Golden snapshot of the fixture workspace: the text people (and models) read.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/context/test_golden.py``
and review the diff."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest

from lsp_agent.commands.snapshot import BOUNDARY
from lsp_agent.context.model import Selection
from lsp_agent.context.snapshot import SnapshotBuilder

from .conftest import FIXTURES

GOLDEN = FIXTURES / "golden"
CASES = {
    "small": {"budget": 900, "focus": ["inventory/report.py"], "instruction": ""},
    "roomy": {
        "budget": 6000,
        "focus": ["inventory/report.py"],
        "instruction": "add a total_report for StockStore",
        "diagnostics": ["inventory/report.py:17: warning: _format_total is private"],
        "selection": Selection("inventory/report.py", 16, 0, 18, 0),
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_snapshot(make_builder: Callable[..., SnapshotBuilder], case: str) -> None:
    snap = make_builder().build(**CASES[case])  # type: ignore[arg-type]
    text = snap.prefix + BOUNDARY + "\n" + snap.tail
    manifest = json.dumps(snap.manifest.to_json(), indent=2, sort_keys=True) + "\n"
    text_path = GOLDEN / f"{case}.txt"
    manifest_path = GOLDEN / f"{case}.manifest.json"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        text_path.write_text(text, encoding="utf-8")
        manifest_path.write_text(manifest, encoding="utf-8")
    assert text == text_path.read_text(encoding="utf-8")
    assert manifest == manifest_path.read_text(encoding="utf-8")
