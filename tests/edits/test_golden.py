"""A realistic coder answer, end to end through the parser, the applier and the diff (golden)."""

from __future__ import annotations

from pathlib import Path

from lsp_agent.edits import (
    apply_blocks_detailed,
    apply_text_edits,
    parse_edit_blocks,
    text_edits,
    unified_diff,
)

CASE = Path(__file__).resolve().parent.parent / "fixtures" / "edits" / "answer_tabs_crlf"


def test_answer_applies_to_the_golden_result() -> None:
    original = (CASE / "original.txt").read_bytes().decode()
    assert "\r\n" in original and "\t" in original  # the fixture really is CRLF + tabs
    blocks, errors = parse_edit_blocks((CASE / "answer.md").read_text())
    assert errors == []
    assert [b.path for b in blocks] == ["calc/calc.go"] * 3

    result = apply_blocks_detailed(original, blocks)

    expected = (CASE / "expected.txt").read_bytes().decode()
    assert result.text == expected
    assert result.text.count("\n") == result.text.count("\r\n")  # no bare LF slipped in
    assert "    " not in result.text  # REPLACE's spaces became the file's tabs
    kinds = [("exact" in n, "ignoring whitespace" in n, "elision" in n) for n in result.notes]
    assert kinds == [(True, False, False), (False, True, False), (True, False, True)]
    assert unified_diff("calc/calc.go", original, result.text) == (
        (CASE / "expected.diff").read_bytes().decode()
    )
    assert apply_text_edits(original, text_edits(original, result.text)) == expected
