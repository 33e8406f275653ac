"""Parsing SEARCH/REPLACE blocks out of a model's answer."""

from __future__ import annotations

from lsp_agent.edits import EditBlock, parse_edit_blocks


def test_plain_block() -> None:
    text = "pkg/mod.py\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n"
    blocks, errors = parse_edit_blocks(text)
    assert errors == []
    assert blocks == [EditBlock("pkg/mod.py", "old\n", "new\n")]


def test_fenced_blocks_with_decorated_paths_and_prose() -> None:
    text = (
        "I will change two things.\n\n"
        "**`pkg/a.py`**\n"
        "```python\n"
        "<<<<<<< SEARCH\n"
        "def f():\n"
        "    ```not a fence in code```\n"
        "=======\n"
        "def g():\n"
        ">>>>>>> REPLACE\n"
        "```\n\n"
        "Then the second file:\n\n"
        "### pkg/b.py\n"
        "```\n"
        "<<<<<<< SEARCH\n"
        "=======\n"
        "x = 1\n"
        ">>>>>>> REPLACE\n"
        "```\n"
    )
    blocks, errors = parse_edit_blocks(text)
    assert errors == []
    assert blocks == [
        EditBlock("pkg/a.py", "def f():\n    ```not a fence in code```\n", "def g():\n"),
        EditBlock("pkg/b.py", "", "x = 1\n"),
    ]


def test_path_inside_the_fence() -> None:
    text = "```python\nsrc/app.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n"
    blocks, _ = parse_edit_blocks(text)
    assert [b.path for b in blocks] == ["src/app.py"]


def test_later_blocks_for_the_same_file_may_omit_the_path() -> None:
    text = (
        "m.py\n<<<<<<< SEARCH\na\n=======\nA\n>>>>>>> REPLACE\n"
        "and also fix this one:\n"
        "<<<<<<< SEARCH\nb\n=======\nB\n>>>>>>> REPLACE\n"
    )
    blocks, errors = parse_edit_blocks(text)
    assert errors == []
    assert [(b.path, b.search) for b in blocks] == [("m.py", "a\n"), ("m.py", "b\n")]


def test_truncated_block_is_an_error_not_a_block() -> None:
    text = (
        "m.py\n<<<<<<< SEARCH\na\n=======\nA\n>>>>>>> REPLACE\n"
        "m.py\n<<<<<<< SEARCH\nb\n=======\nB is half writ"
    )
    blocks, errors = parse_edit_blocks(text)
    assert [b.search for b in blocks] == ["a\n"]
    assert len(errors) == 1
    assert "block 2 (m.py)" in errors[0] and "truncated" in errors[0]


def test_block_cut_by_a_new_search_marker_is_truncated() -> None:
    text = "m.py\n<<<<<<< SEARCH\na\n<<<<<<< SEARCH\nb\n=======\nB\n>>>>>>> REPLACE\n"
    blocks, errors = parse_edit_blocks(text)
    assert [b.search for b in blocks] == ["b\n"]
    assert "truncated" in errors[0]


def test_missing_path_is_reported() -> None:
    blocks, errors = parse_edit_blocks("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n")
    assert blocks == []
    assert "no file path" in errors[0]


def test_stray_replace_marker_is_reported() -> None:
    _, errors = parse_edit_blocks("some text\n>>>>>>> REPLACE\n")
    assert "outside a SEARCH/REPLACE block" in errors[0]


def test_crlf_answer_is_normalised() -> None:
    text = "m.py\r\n<<<<<<< SEARCH\r\na\r\n=======\r\nb\r\n>>>>>>> REPLACE\r\n"
    blocks, _ = parse_edit_blocks(text)
    assert blocks == [EditBlock("m.py", "a\n", "b\n")]


def test_setext_heading_is_not_a_stray_divider() -> None:
    text = "Title\n=======\n\nm.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"
    blocks, errors = parse_edit_blocks(text)
    assert errors == [] and len(blocks) == 1


def test_path_decorations_are_stripped() -> None:
    marker = "\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    cases = {
        "File: `a.py`": "a.py",
        "# pkg/a.py": "pkg/a.py",
        "a.py:": "a.py",
        "**`docs/my notes.md`**:": "docs/my notes.md",
        "Makefile": "Makefile",
    }
    for line, path in cases.items():
        blocks, errors = parse_edit_blocks(line + marker)
        assert (errors, [b.path for b in blocks]) == ([], [path]), line


def test_prose_is_not_taken_for_a_path() -> None:
    blocks, errors = parse_edit_blocks(
        "Edit the file like this\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    )
    assert blocks == [] and "no file path" in errors[0]


def test_block_numbers_in_errors_count_blocks_only() -> None:
    text = (
        ">>>>>>> REPLACE\n"
        "m.py\n<<<<<<< SEARCH\na\n=======\nA\n>>>>>>> REPLACE\n"
        "m.py\n<<<<<<< SEARCH\nb\n"
    )
    blocks, errors = parse_edit_blocks(text)
    assert len(blocks) == 1
    assert errors[0].startswith("line 1:")
    assert errors[1].startswith("block 2 (m.py): truncated")
