"""The validator beyond tree-sitter: Python's compile(), JSON and TOML; only new errors count."""

from __future__ import annotations

import pytest

from lsp_agent.agents.validator import describe, new_syntax_errors

BASE = "def f(x):\n    return x\n"


@pytest.mark.parametrize(
    ("after", "message"),
    [
        (BASE + "return 1\n", "'return' outside function"),
        (BASE + "await f(1)\n", "'await' outside function"),
        ("def f(x):\n\tif x:\n        return x\n", "inconsistent use of tabs and spaces"),
        (BASE + "f(x=1, x=2)\n", "keyword argument repeated"),
        (BASE + "from __future__ import annotations\n", "from __future__ imports"),
        (BASE + "nonlocal y\n", "nonlocal declaration not allowed"),
    ],
)
def test_compile_errors_tree_sitter_accepts_are_new_errors(after: str, message: str) -> None:
    [problem] = new_syntax_errors("m.py", BASE, after)
    assert problem.kind == "compile" and message in problem.message
    assert "m.py no longer compiles" in describe("m.py", [problem])


def test_a_compile_error_the_file_already_had_does_not_block_an_edit() -> None:
    broken = "x = 1\nreturn x\n\n\ndef g():\n    return 1\n"
    assert new_syntax_errors("m.py", broken, broken.replace("return 1", "return 2")) == []


def test_a_different_compile_error_counts_only_on_a_line_the_edit_wrote() -> None:
    broken = "return 0\n\n\ndef g():\n    return 1\n"
    fixed_first = "x = 0\n\n\ndef g():\n    return 1\nbreak\n"  # wrote a new error
    [problem] = new_syntax_errors("m.py", broken, fixed_first)
    assert "'break' outside loop" in problem.message
    # Fixing the first error exposes one the file had further down: not the edit's.
    two = "return 0\nx = 1\nbreak\n"
    assert new_syntax_errors("m.py", two, "y = 0\nx = 1\nbreak\n") == []


def test_a_new_python_file_that_does_not_compile_is_refused() -> None:
    [problem] = new_syntax_errors("new.py", "", "return 1\n")
    assert "'return' outside function" in problem.message


def test_json_and_toml_that_parsed_before_must_parse_after() -> None:
    [bad_json] = new_syntax_errors("p.json", '{"a": 1}\n', '{"a": 1,}\n')
    assert bad_json.kind == "json"
    [bad_toml] = new_syntax_errors("p.toml", "a = 1\n", "a = 1\na = 2\n")
    assert bad_toml.kind == "toml" and bad_toml.line == 1
    jsonc = '{\n  // comment\n  "a": 1\n}\n'
    assert new_syntax_errors("tsconfig.json", jsonc, jsonc.replace("1", "2,")) == []


def test_files_without_a_check_pass() -> None:
    assert new_syntax_errors("notes.txt", "a\n", "=======\n") == []


@pytest.mark.parametrize(
    "newer",
    ["type Vector = list[float]\n", "def first[T](xs: list[T]) -> T:\n    return xs[0]\n"],
)
def test_newer_python_syntax_tree_sitter_accepts_is_not_refused(newer: str) -> None:
    # The server may run on an older Python than the project: its parser's grammar errors
    # are not the edit's fault (tree-sitter's grammar follows the newest Python).
    assert new_syntax_errors("m.py", BASE, BASE + newer) == []
