"""Byte-identical files appear once in the repo map: the best-ranked in its tier, every other
copy by path, its manifest reason naming the file it duplicates (vendored headers, tools/
copies)."""

from __future__ import annotations

import shutil
from pathlib import Path

from lsp_agent.config import ContextSettings
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.index.workspace import WorkspaceIndex


def test_a_copy_is_listed_by_path_and_its_text_appears_once(workspace: Path) -> None:
    original = "inventory/report.py"
    (workspace / "vendor").mkdir()
    shutil.copy(workspace / original, workspace / "vendor" / "report.py")
    (workspace / "vendor" / "empty.py").write_text("")
    (workspace / "vendor" / "also_empty.py").write_text("")
    index = WorkspaceIndex(workspace, cache_path=None)
    index.build(jobs=1)
    snap = SnapshotBuilder(index, ContextSettings(), state_dir=None).build(budget=200_000)
    rows = {e.path: e for e in snap.manifest.files if e.section == "prefix"}
    assert rows[original].tier == "full"
    copy = rows["vendor/report.py"]
    assert copy.tier == "path"
    assert copy.reason.endswith(f"same content as {original}")
    assert copy.rank > rows[original].rank
    body = (workspace / original).read_text()
    assert snap.prefix.count(body.strip()) == 1
    assert f"vendor/report.py (copy of {original})\n" in snap.prefix
    # empty files are not "copies" of each other: nothing to save, and "empty" is information
    assert rows["vendor/empty.py"].tier == rows["vendor/also_empty.py"].tier == "full"
