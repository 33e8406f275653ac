"""commands/jsonout.py: indent=2 JSON with each row of a list on one line."""

from __future__ import annotations

import json

from lsp_agent.commands import jsonout


def test_without_rows_in_lists_it_is_indent_2() -> None:
    value = {
        "budget": 1000,
        "nested": {"a": [], "b": {}, "c": {"deep": {"x": None}}},
        "lists": [[], {}, 3, "é", [{"k": [1]}]],
        "text": 'quote " and \\ and \n',
    }
    # every list here holds a container that is no row, an empty one, or a scalar
    assert jsonout.dumps(value) == json.dumps(value, indent=2)
    assert jsonout.dumps(value, ensure_ascii=False) == json.dumps(
        value, indent=2, ensure_ascii=False
    )
    assert jsonout.dumps(7) == "7" and jsonout.dumps([]) == "[]" and jsonout.dumps({}) == "{}"


def test_rows_stand_one_per_line_and_read_back_the_same() -> None:
    rows = [
        {"path": f"src/m{i}.py", "tier": "full", "tokens": i, "score": i / 7, "ok": i % 2 == 0}
        for i in range(50)
    ]
    value = {"budget": 4000, "files": rows, "pairs": [[1, 2], [3, "x"]], "empty": []}
    text = jsonout.dumps(value)
    assert json.loads(text) == value
    lines = text.splitlines()
    assert lines[0] == "{" and lines[1] == '  "budget": 4000,' and lines[-1] == "}"
    assert lines[2] == '  "files": ['
    assert lines[3] == "    " + json.dumps(rows[0]) + ","
    assert lines[52] == "    " + json.dumps(rows[49])  # the last row: no comma
    assert lines[53] == "  ],"
    assert "    [1, 2]," in lines and '    [3, "x"]' in lines
    assert len(lines) == 1 + 1 + (1 + 50 + 1) + (1 + 2 + 1) + 1 + 1


def test_a_real_snapshot_manifest_reads_back(tmp_path: object) -> None:
    from pathlib import Path

    from lsp_agent.config import ContextSettings, IndexSettings
    from lsp_agent.context.snapshot import SnapshotBuilder
    from lsp_agent.index.workspace import WorkspaceIndex

    root = Path(str(tmp_path))
    for i in range(30):
        (root / f"m{i}.py").write_text(f"def f{i}():\n    return 'é {i}'\n")
    index = WorkspaceIndex(root, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    manifest = SnapshotBuilder(index, ContextSettings(), state_dir=None).build(budget=3000).manifest
    data = manifest.to_json()
    text = jsonout.dumps(data, ensure_ascii=False)
    assert json.loads(text) == data
    assert sum(1 for line in text.splitlines() if line.startswith('    {"path": ')) == 30
