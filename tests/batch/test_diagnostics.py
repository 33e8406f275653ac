"""Linter JSON in four formats, detected by shape, normalised to LSP diagnostics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp_agent.batch.diagnostics import detect_format, parse_diagnostics, render_diagnostic
from lsp_agent.batch.errors import UsageError


def test_ruff_output_is_grouped_and_made_zero_based(tmp_path: Path) -> None:
    data = [
        {
            "code": "F401",
            "message": "`os` imported but unused",
            "filename": str(tmp_path / "pkg" / "a.py"),
            "location": {"row": 1, "column": 8},
            "end_location": {"row": 1, "column": 10},
        },
        {
            "code": "E501",
            "message": "Line too long",
            "filename": "pkg/b.py",
            "location": {"row": 3, "column": 1},
            "end_location": {"row": 3, "column": 120},
        },
    ]
    grouped, warnings = parse_diagnostics(json.dumps(data), tmp_path, cwd=tmp_path)
    assert warnings == []
    assert list(grouped) == ["pkg/a.py", "pkg/b.py"]
    first = grouped["pkg/a.py"][0]
    assert first["range"] == {
        "start": {"line": 0, "character": 7},
        "end": {"line": 0, "character": 9},
    }
    assert (first["code"], first["source"], first["severity"]) == ("F401", "ruff", 1)
    assert grouped["pkg/b.py"][0]["severity"] == 2
    assert (
        render_diagnostic("pkg/a.py", first) == "pkg/a.py:1:8: F401 [ruff] `os` imported but unused"
    )


def test_pyright_eslint_and_lsp_shapes(tmp_path: Path) -> None:
    pyright = {
        "version": "1.1",
        "generalDiagnostics": [
            {
                "file": str(tmp_path / "m.py"),
                "severity": "warning",
                "message": "x is unknown",
                "range": {"start": {"line": 4, "character": 2}, "end": {"line": 4, "character": 3}},
                "rule": "reportUndefinedVariable",
            }
        ],
    }
    eslint = [
        {
            "filePath": str(tmp_path / "web" / "app.js"),
            "messages": [
                {
                    "ruleId": "no-unused-vars",
                    "severity": 2,
                    "message": "unused",
                    "line": 2,
                    "column": 5,
                }
            ],
        }
    ]
    lsp = {
        "uri": (tmp_path / "m.py").as_uri(),
        "diagnostics": [{"range": pyright["generalDiagnostics"][0]["range"], "message": "m"}],
    }
    assert detect_format(pyright) == "pyright"
    assert detect_format(eslint) == "eslint"
    assert detect_format(lsp) == "lsp" and detect_format([lsp]) == "lsp"

    grouped, _ = parse_diagnostics(json.dumps(pyright), tmp_path)
    assert (
        grouped["m.py"][0]["severity"] == 2
        and grouped["m.py"][0]["code"] == "reportUndefinedVariable"
    )
    grouped, _ = parse_diagnostics(json.dumps(eslint), tmp_path)
    assert grouped["web/app.js"][0]["range"]["start"] == {"line": 1, "character": 4}
    assert grouped["web/app.js"][0]["severity"] == 1
    grouped, _ = parse_diagnostics(json.dumps([lsp, lsp]), tmp_path)
    assert len(grouped["m.py"]) == 2


def test_files_outside_root_are_skipped_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    data = [
        {
            "code": "F401",
            "message": "m",
            "filename": str(tmp_path / "elsewhere.py"),
            "location": {"row": 1, "column": 1},
        }
    ]
    grouped, warnings = parse_diagnostics(json.dumps(data), root)
    assert grouped == {} and "outside the workspace root" in warnings[0]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not json", "not JSON"),
        ('{"something": 1}', "cannot tell the diagnostics format"),
        ('[{"filename": "a.py", "location": 3}]', "malformed ruff"),
        ('{"uri": "http://x/a.py", "diagnostics": []}', "only file://"),
    ],
)
def test_bad_input_is_a_usage_error(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        parse_diagnostics(text, tmp_path)
