"""Incremental re-parsing of open buffers gives exactly the from-scratch symbols."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lsp_agent.index.incremental import changed_range
from lsp_agent.index.symbols import extract
from lsp_agent.index.workspace import WorkspaceIndex

LANGS = Path(__file__).resolve().parent.parent / "fixtures" / "index" / "langs"


def test_changed_range() -> None:
    assert changed_range(b"abcdef", b"abcXef") == (3, 4, 4)
    assert changed_range(b"abc", b"abc") == (3, 3, 3)
    assert changed_range(b"aaaa", b"aaaaaa") == (4, 4, 6)  # insert at the end of a run
    assert changed_range(b"", b"new") == (0, 0, 3)
    assert changed_range(b"old", b"") == (0, 3, 0)


@pytest.mark.parametrize("name", ["sample.py", "sample.ts", "sample.rs", "sample.c"])
def test_random_edits_match_a_full_parse(name: str, tmp_path: Path) -> None:
    rng = random.Random(name)
    text = (LANGS / name).read_text(encoding="utf-8")
    (tmp_path / name).write_text(text, encoding="utf-8")
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    snippets = ["x", "\n", "def é(): pass\n", "(", "}", "  ", "class Ω:\n", "// ü\n", ""]
    for _ in range(40):
        start = rng.randrange(len(text) + 1)
        end = min(len(text), start + rng.choice([0, 0, 1, 5, 40]))
        text = text[:start] + rng.choice(snippets) + text[end:]
        entry = index.update(name, text)
        assert entry is not None
        language = entry.language
        assert language is not None
        expected = extract(language, text.encode("utf-8"))
        assert (entry.definitions, entry.references, entry.syntax_errors) == expected
