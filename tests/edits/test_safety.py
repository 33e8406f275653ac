"""Edit safety rules, unit by unit: divider-shaped lines, elision, marker lines, no-ops."""

from __future__ import annotations

import pytest

from lsp_agent.edits import ApplyError, EditBlock, apply_blocks, apply_blocks_detailed
from lsp_agent.edits import parse_edit_blocks as parse
from lsp_agent.edits.checks import elision_comment, marker_problem


def test_a_stray_divider_at_the_end_is_the_replace_marker() -> None:
    blocks, errors = parse("a.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n=======\n\n```\n")
    assert errors == []
    assert blocks == [EditBlock("a.py", "x = 1\n", "x = 2\n")]


def test_a_stray_divider_before_the_next_block_ends_the_first() -> None:
    text = (
        "a.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n=======\n\n"
        "b.py\n<<<<<<< SEARCH\ny\n=======\nz\n>>>>>>> REPLACE\n"
    )
    blocks, errors = parse(text)
    assert errors == []
    assert blocks == [EditBlock("a.py", "x = 1\n", "x = 2\n"), EditBlock("b.py", "y\n", "z\n")]


def test_a_stray_divider_followed_by_prose_is_still_truncation() -> None:
    text = "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n=======\nNow the next one.\n"
    blocks, errors = parse(text)
    assert blocks == [] and "truncated" in errors[0]


def test_a_single_divider_without_replace_is_truncation_not_a_guess() -> None:
    blocks, errors = parse("a.py\n<<<<<<< SEARCH\nx\n=======\n")
    assert blocks == [] and "truncated" in errors[0]


def test_several_divider_lines_give_one_reading_each() -> None:
    [block], errors = parse("a.md\n<<<<<<< SEARCH\nT\n=====\n=======\nU\n=====\n>>>>>>> REPLACE\n")
    assert errors == []
    assert block.splits == (
        ("T\n", "=======\nU\n=====\n"),
        ("T\n=====\n", "U\n=====\n"),
        ("T\n=====\n=======\nU\n", ""),
    )


HEADINGS = "Intro\n=====\n\ntext\n\nUsage\n=====\n\nmore\n"


def test_the_file_decides_and_the_chosen_reading_is_returned() -> None:
    [block], _ = parse(
        "a.md\n<<<<<<< SEARCH\nUsage\n=====\n=======\nHow to use\n==========\n>>>>>>> REPLACE\n"
    )
    result = apply_blocks_detailed(HEADINGS, [block])
    assert result.text == HEADINGS.replace("Usage\n=====", "How to use\n==========")
    assert result.blocks == [EditBlock("a.md", "Usage\n=====\n", "How to use\n==========\n")]
    assert "the file decided" in result.notes[0]


def test_readings_that_apply_in_different_places_are_refused_quoting_the_lines() -> None:
    text = "  x\n  =======\n  y\nx\n"
    [block], _ = parse("a.txt\n<<<<<<< SEARCH\nx\n=======\ny\n=======\nz\n>>>>>>> REPLACE\n")
    with pytest.raises(ApplyError, match="different places") as caught:
        apply_blocks(text, [block])
    assert "block line 2: '======='" in caught.value.message
    assert "block line 4: '======='" in caught.value.message


def test_no_reading_applies_refusal_carries_the_first_readings_reason() -> None:
    [block], _ = parse("a.py\n<<<<<<< SEARCH\nq = 1\n=======\nq = 2\n=======\n>>>>>>> REPLACE\n")
    with pytest.raises(ApplyError, match="no reading of it applies") as caught:
        apply_blocks("q = 1\n", [block])
    assert "divider" in caught.value.hint


@pytest.mark.parametrize(
    "line",
    [
        "    # ... existing code ...",
        "// ... rest unchanged",
        "  <!-- ... -->",
        "/* ... */",
        "# rest of the file",
        "    // other methods unchanged",
        "{/* ... */}",
        "-- ... remaining queries ...",
        "# …",
        "/* rest of styles */",
        "# (unchanged)",
        "# same as above",
        "# code continues...",
        "# other fields omitted",
    ],
)
def test_elision_comments_are_recognised(line: str) -> None:
    assert elision_comment(line)


@pytest.mark.parametrize(
    "line",
    [
        "# compute the sum",
        "// TODO: handle more cases...",
        "x = 1  # ...",
        "...",
        "# -*- coding: utf-8 -*-",
        "# keep sorted",
        "# Note: existing users keep their settings when upgrading to 2.0 from 1.x",
        "# Existing tests below cover the old API",
        "# unchanged behaviour for old clients is tested below",
    ],
)
def test_ordinary_lines_are_not_elision(line: str) -> None:
    assert not elision_comment(line)


def test_elision_refused_unless_search_has_the_same_comment() -> None:
    text = "def f():\n    a()\n    b()\n"
    with pytest.raises(ApplyError, match="stands for lines left out"):
        apply_blocks(text, [EditBlock("a.py", "    a()\n    b()\n", "    # ...\n    c()\n")])
    kept = "def f():\n    # ... existing code ...\n    b()\n"
    block = EditBlock(
        "a.py", "    # ... existing code ...\n", "    # ... existing code ...\n    c()\n"
    )
    assert apply_blocks(kept, [block]) == kept.replace("code ...\n", "code ...\n    c()\n")


def test_marker_lines_need_the_files_own_evidence() -> None:
    assert marker_problem([], ["<<<<<<< HEAD"], ["x"]) != ""
    assert marker_problem([], ["<<<<<<< HEAD"], ["<<<<<<< HEAD", "x"]) == ""
    setext = ["Title", "=====", "", "x"]
    assert marker_problem(["x"], ["x", "New", "=====", "y"], setext) == ""
    assert "divider" in marker_problem(["x"], ["x", "New", "====="], setext)  # last line
    assert "divider" in marker_problem(["x"], ["=====", "New", "y"], setext)  # first line
    assert "divider" in marker_problem(["x"], ["x", "New", "=====", "y"], ["# T", "x"])
    conflict = ["<<<<<<< a", "x", "=======", "y", ">>>>>>> b"]
    assert "divider" in marker_problem(["x"], ["x", "New", "=======", "y"], conflict)


def test_already_applied_needs_added_lines_at_one_place() -> None:
    text = "a\nb2\nc\n"
    result = apply_blocks_detailed(text, [EditBlock("f", "b\n", "b2\n")])
    assert result.text == text and "already applied" in result.notes[0]
    with pytest.raises(ApplyError, match="not found"):  # deletes only: nothing shows it done
        apply_blocks(text, [EditBlock("f", "zz\nc\n", "c\n")])
