"""Incremental re-parsing of open buffers gives exactly the from-scratch symbols."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lsp_agent.index import incremental
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


@pytest.mark.parametrize("name", sorted(p.name for p in LANGS.iterdir()))
def test_random_edits_match_a_full_parse(name: str, tmp_path: Path) -> None:
    rng = random.Random(name)
    text = (LANGS / name).read_text(encoding="utf-8")
    (tmp_path / name).write_text(text, encoding="utf-8")
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    snippets = [
        "x",
        "\n",
        "def é(): pass\n",
        "(",
        "}",
        "{",
        "  ",
        "class Ω:\n",
        "// ü\n",
        "",
        "\n\n\n",
        "fn f() {}\n",
        "/*",
        "*/",
        '"',
        "int g(void);\n",
        "function h() { return k(); }\n",
    ]
    for _ in range(150):
        start = rng.randrange(len(text) + 1)
        end = min(len(text), start + rng.choice([0, 0, 1, 5, 40, 300]))
        text = text[:start] + rng.choice(snippets) + text[end:]
        entry = index.update(name, text)
        assert entry is not None
        language = entry.language
        assert language is not None
        expected = extract(language, text.encode("utf-8"))
        assert (entry.definitions, entry.references, entry.syntax_errors) == expected


def test_an_edit_inside_a_method_re_reads_only_its_neighbourhood(tmp_path: Path) -> None:
    methods = "".join(
        f"    def m{i}(self):\n        a = {i}\n        return helper{i}(a)\n\n" for i in range(50)
    )
    text = f"class Big:\n{methods}"
    (tmp_path / "big.py").write_text(text)
    index = WorkspaceIndex(tmp_path, cache_path=None)
    index.build(jobs=1)
    index.update("big.py", text)
    calls: list[tuple[int, int] | None] = []
    real = incremental.extract_raw

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("rows"))
        return real(*args, **kwargs)

    edited = text.replace("return helper25(a)", "return other25(a) + 1")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(incremental, "extract_raw", spy)
        entry = index.update("big.py", edited)
    assert entry is not None
    assert len(calls) == 1 and calls[0] is not None
    lo, hi = calls[0]
    assert hi - lo < 5  # a statement or two, not the class
    by_name = {d.name: d for d in entry.definitions}
    assert by_name["m25"].scope == "Big" and by_name["m25"].kind == "method"
    assert (entry.definitions, entry.references, 0) == extract("python", edited.encode())
