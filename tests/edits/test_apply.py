"""The applier's match ladder, one behaviour per test."""

from __future__ import annotations

import pytest

from lsp_agent.edits import ApplyError, EditBlock, apply_blocks, apply_blocks_detailed


def block(search: str, replace: str, path: str = "m.py") -> EditBlock:
    return EditBlock(path, search, replace)


def test_exact_match_replaces_only_the_matched_lines() -> None:
    text = "a = 1\nb = 2\nc = 3\n"
    assert apply_blocks(text, [block("b = 2\n", "b = 20\n")]) == "a = 1\nb = 20\nc = 3\n"


def test_indentation_offset_reindents_replace() -> None:
    text = "class A:\n    def f(self):\n        return 1\n"
    # The model wrote the method flush left; the file has it at 4 columns.
    search = "def f(self):\n    return 1\n"
    replace = "def f(self):\n    if self:\n        return 2\n    return 1\n"
    result = apply_blocks_detailed(text, [block(search, replace)])
    assert result.text == (
        "class A:\n    def f(self):\n        if self:\n            return 2\n        return 1\n"
    )
    assert "offset +4" in result.notes[0]


def test_negative_indentation_offset() -> None:
    text = "x = 1\ny = 2\n"
    result = apply_blocks(text, [block("    y = 2\n", "    y = 3\n")])
    assert result == "x = 1\ny = 3\n"


def test_tabs_in_file_spaces_in_block_keep_tabs() -> None:
    text = "func f() {\n\tif x {\n\t\treturn 1\n\t}\n}\n"
    search = "    if x {\n        return 1\n    }\n"
    replace = "    if x {\n        log()\n        return 1\n    }\n"
    result = apply_blocks(text, [block(search, replace, "f.go")])
    assert result == "func f() {\n\tif x {\n\t\tlog()\n\t\treturn 1\n\t}\n}\n"


def test_trailing_whitespace_in_file_is_tolerated_and_kept_on_untouched_lines() -> None:
    text = "a = 1   \nb = 2\n"
    result = apply_blocks(text, [block("a = 1\nb = 2\n", "a = 1\nb = 3\n")])
    assert result == "a = 1   \nb = 3\n"


def test_crlf_file_stays_crlf() -> None:
    text = "one\r\ntwo\r\nthree\r\n"
    result = apply_blocks(text, [block("two\n", "TWO\nand a half\n")])
    assert result == "one\r\nTWO\r\nand a half\r\nthree\r\n"


def test_crlf_block_on_lf_file_gives_lf() -> None:
    result = apply_blocks("one\ntwo\n", [block("one\r\n", "ONE\r\n")])
    assert result == "ONE\ntwo\n"


def test_no_final_newline_is_preserved() -> None:
    text = "first\nlast"
    assert apply_blocks(text, [block("last\n", "LAST\n")]) == "first\nLAST"
    assert apply_blocks(text, [block("first\n", "FIRST\n")]) == "FIRST\nlast"


def test_final_newline_is_preserved_when_appending_to_last_line() -> None:
    text = "a\nb\n"
    assert apply_blocks(text, [block("b\n", "b\nc\n")]) == "a\nb\nc\n"


def test_spurious_leading_blank_line_in_search() -> None:
    text = "def f():\n    return 1\n"
    result = apply_blocks_detailed(text, [block("\ndef f():\n", "\ndef g():\n")])
    assert result.text == "def g():\n    return 1\n"


def test_paired_ellipsis_keeps_the_gap() -> None:
    text = "def f():\n    a = 1\n    b = 2\n    c = 3\n    return a\n"
    search = "def f():\n...\n    return a\n"
    replace = "def f(x):\n...\n    return a + x\n"
    result = apply_blocks_detailed(text, [block(search, replace)])
    assert result.text == "def f(x):\n    a = 1\n    b = 2\n    c = 3\n    return a + x\n"
    assert "elision" in result.notes[0]


def test_unpaired_ellipsis_is_an_error() -> None:
    text = "def f():\n    a = 1\n    return a\n"
    with pytest.raises(ApplyError, match=r"unpaired '\.\.\.'"):
        apply_blocks(text, [block("def f():\n...\n    return a\n", "def f():\n    return 2\n")])


def test_literal_ellipsis_in_the_file_matches_exactly() -> None:
    text = "class P(Protocol):\n    def f(self) -> int:\n        ...\n"
    search = "    def f(self) -> int:\n        ...\n"
    replace = "    def f(self) -> str:\n        ...\n"
    assert apply_blocks(text, [block(search, replace)]).endswith("-> str:\n        ...\n")


def test_search_matching_twice_is_ambiguous() -> None:
    text = "x = 1\nprint(x)\nx = 1\n"
    with pytest.raises(ApplyError) as info:
        apply_blocks(text, [block("x = 1\n", "x = 2\n")])
    assert "matches 2 places" in info.value.message
    assert "(line 1, line 3)" in info.value.message
    assert "print(x)" in info.value.hint


def test_ambiguity_is_not_resolved_by_a_looser_level() -> None:
    # Two loose matches (different indentation) and no exact one: still an error, not a guess.
    text = "if a:\n    go()\nif b:\n        go()\n"
    with pytest.raises(ApplyError, match="matches 2 places"):
        apply_blocks(text, [block("  go()\n", "  stop()\n")])


def test_empty_search_on_a_non_empty_file_is_refused_with_its_last_lines() -> None:
    # aider appends; an import "added" at the bottom of a module is how that goes wrong.
    for text in ("a = 1\n", "a = 1"):
        with pytest.raises(ApplyError, match="empty SEARCH") as caught:
            apply_blocks(text, [block("", "import os\n")])
        assert "a = 1" in caught.value.hint


def test_empty_search_fills_a_whitespace_only_file() -> None:
    assert apply_blocks("\n\n", [block("", "x = 1\n")]) == "x = 1\n"


def test_empty_search_on_empty_file_inserts() -> None:
    assert apply_blocks("", [block("", "print('hi')\n")]) == "print('hi')\n"


def test_replace_already_present_is_a_noop() -> None:
    text = "def f():\n    return 2\n"
    result = apply_blocks_detailed(text, [block("    return 1\n", "    return 2\n")])
    assert result.text == text
    assert "already applied" in result.notes[0]


def test_a_deletion_whose_search_is_gone_is_not_already_applied() -> None:
    # REPLACE '    }' occurs once, but it adds nothing beyond SEARCH: nothing shows it applied.
    text = "function f() {\n    g();\n    }\n"
    with pytest.raises(ApplyError, match="not found"):
        apply_blocks(text, [block("    h();\n    }\n", "    }\n")])


def test_already_applied_needs_replace_at_exactly_one_place() -> None:
    text = "x = 2\ny = 0\nx = 2\n"
    with pytest.raises(ApplyError, match="not found"):
        apply_blocks(text, [block("x = 1\n", "x = 2\n")])


def test_search_equal_to_replace_is_a_noop() -> None:
    text = "a\n"
    result = apply_blocks_detailed(text, [block("not in file\n", "not in file\n")])
    assert result.text == text
    assert "identical" in result.notes[0]


def test_blocks_apply_in_sequence_second_depends_on_first() -> None:
    text = "def old():\n    pass\n"
    blocks = [
        block("def old():\n", "def new():\n"),
        block("def new():\n    pass\n", "def new():\n    return 1\n"),
    ]
    assert apply_blocks(text, blocks) == "def new():\n    return 1\n"


def test_failure_reports_block_index_and_partial_text() -> None:
    text = "a\nb\n"
    with pytest.raises(ApplyError) as info:
        apply_blocks(text, [block("a\n", "A\n"), block("zzz\n", "y\n")])
    assert info.value.index == 1
    assert info.value.partial == "A\nb\n"
    assert info.value.message.startswith("block 2 (m.py)")


def test_missing_search_hint_shows_the_closest_lines() -> None:
    text = "".join(f"line_{i} = {i}\n" for i in range(40))
    text += "def compute(alpha, beta):\n    total = alpha + beta\n    return total\n"
    text += "".join(f"tail_{i} = {i}\n" for i in range(40))
    search = "def compute(alpha, beta):\n    total = alpha + beta  # sum\n    return total\n"
    with pytest.raises(ApplyError) as info:
        apply_blocks(text, [block(search, "pass\n")])
    hint = info.value.hint
    assert "lines 41-43" in hint
    assert "    total = alpha + beta\n" in hint
    assert "line_39" not in hint and "tail_0" not in hint


def test_missing_search_with_nothing_similar_says_so() -> None:
    with pytest.raises(ApplyError) as info:
        apply_blocks("a = 1\n", [block("completely different words here\n", "x\n")])
    assert "No similar lines" in info.value.hint


def test_reindent_below_column_zero_is_an_error() -> None:
    text = "if a:\n    b()\n"
    with pytest.raises(ApplyError, match="left of column 0"):
        apply_blocks(text, [block("        b()\n", "        b()\n  c()\n")])


def test_byte_order_mark_is_kept_and_ignored_for_matching() -> None:
    text = "\ufeffimport os\r\nx = 1\r\n"
    assert (
        apply_blocks(text, [block("import os\n", "import sys\n")])
        == "\ufeffimport sys\r\nx = 1\r\n"
    )


def test_blank_lines_at_the_edges_of_search_are_dropped_when_needed() -> None:
    text = "a = 1\nb = 2\n"
    result = apply_blocks_detailed(text, [block("\nb = 2\n\n", "\nb = 3\n\n")])
    assert result.text == "a = 1\nb = 3\n"
    assert "blank lines" in result.notes[0]


def test_apply_error_survives_pickling() -> None:
    import pickle

    with pytest.raises(ApplyError) as info:
        apply_blocks("a\nb\n", [block("a\n", "A\n"), block("nope\n", "x\n")])
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.message, copy.hint, copy.index, copy.partial) == (
        info.value.message,
        info.value.hint,
        1,
        "A\nb\n",
    )


def test_eight_spaces_per_tab_is_recognised_for_new_nested_lines() -> None:
    text = "int f() {\n\tif (x) {\n\t\ty();\n\t}\n}\n"
    # At tab width 4 this single line also matches, shifted by -4; width 8 matches unshifted,
    # and only that reading puts the new line two tabs deep.
    search = "        if (x) {\n"
    replace = "        if (x) {\n                z();\n"
    result = apply_blocks(text, [block(search, replace, "f.c")])
    assert result == "int f() {\n\tif (x) {\n\t\tz();\n\t\ty();\n\t}\n}\n"
