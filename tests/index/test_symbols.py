"""Golden symbol lists per language (real grammars, real fixture files).

Regenerate after an intended query change with ``UPDATE_GOLDEN=1 pytest tests/index`` and
review the diff: the goldens are what the repo map shows the model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from lsp_agent.index import languages
from lsp_agent.index.symbols import build_entry, extract

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "index"
LANGS = FIXTURES / "langs"
GOLDEN = FIXTURES / "golden"
SAMPLES = sorted(p.name for p in LANGS.iterdir())


def _render(path: Path) -> dict:
    language = languages.language_for_path(path.name)
    assert language is not None, path
    definitions, references, errors = extract(language, path.read_bytes())
    return {
        "language": language,
        "syntax_errors": errors,
        "definitions": [
            f"{d.start_line}:{d.start_col}-{d.end_line}:{d.end_col} {d.kind} "
            f"{d.scope + '.' if d.scope else ''}{d.name} | {d.signature.strip()}"
            for d in definitions
        ],
        "references": [f"{r.line}:{r.col} {r.kind} {r.name}" for r in references],
    }


@pytest.mark.parametrize("name", SAMPLES)
def test_golden_symbols(name: str) -> None:
    actual = _render(LANGS / name)
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(actual, indent=1) + "\n", encoding="utf-8")
    assert golden.exists(), f"no golden for {name}; run with UPDATE_GOLDEN=1"
    assert actual == json.loads(golden.read_text(encoding="utf-8"))


def test_every_language_has_a_fixture_and_a_compiled_query() -> None:
    covered = {languages.language_for_path(name) for name in SAMPLES}
    assert covered == set(languages.BY_NAME)
    for name in languages.BY_NAME:
        assert languages.load_query(name) is languages.load_query(name)  # compiled once


def test_python_scopes_kinds_and_reference_kinds() -> None:
    definitions, references, errors = extract("python", (LANGS / "sample.py").read_bytes())
    by_name = {d.name: d for d in definitions}
    assert errors == 0
    assert by_name["LIMIT"].kind == "constant"
    assert by_name["Shape"].kind == "class" and by_name["Shape"].scope == ""
    assert by_name["area"].kind == "method" and by_name["area"].scope == "Shape"
    assert by_name["helper"].kind == "function" and by_name["helper"].scope == "Shape.area"
    assert by_name["area"].signature == "    def area(self, scale: float) -> float:"
    assert "table" not in by_name  # locals are not definitions
    kinds = {(r.name, r.kind) for r in references}
    assert {
        ("helper", "call"),
        ("Base", "type"),
        ("OrderedDict", "import"),
        ("path", "import"),
    } <= (kinds)
    assert ("Shape", "type") in kinds and ("Shape", "call") in kinds


def test_syntax_errors_are_counted_and_symbols_still_found() -> None:
    source = b"def ok():\n    return 1\n\ndef broken(:\n    pass\n\nclass After:\n    x = (\n"
    definitions, _refs, errors = extract("python", source)
    assert errors >= 1
    assert "ok" in [d.name for d in definitions]


def test_build_entry_counts_lines_and_flags_bad_utf8() -> None:
    entry = build_entry("a.py", "python", b"x = 1\n# caf\xe9\n", mtime_ns=1)
    assert entry.lines == 2 and entry.decode_errors
    assert [d.name for d in entry.definitions] == ["x"]
    plain = build_entry("notes.txt", None, b"no newline at end", mtime_ns=1)
    assert plain.lines == 1 and plain.definitions == () and plain.language is None
    assert dataclasses.replace(plain, mtime_ns=2).sha256 == plain.sha256
