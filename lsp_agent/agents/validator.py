"""Syntax check of a coder's result: parse before and after, compare errors.

Only NEW errors count: a file that was already broken (the user is mid-edit) must not block a
fix elsewhere in it. Three checks, each where it is cheap and real:

- tree-sitter, for every language the index has a grammar for (the index's language table);
- Python's own ``compile()`` for ``.py``/``.pyi``: it also rejects what the grammar accepts
  (``return``/``await`` outside a function, mixed tabs and spaces, a repeated keyword argument,
  misplaced ``from __future__``, ...); plain grammar errors ("invalid syntax") are left to
  tree-sitter. It reports one error: when the file did not compile before either, a different
  error counts only if it lies on a line the edit wrote;
- ``json``/``tomllib`` for ``.json``/``.toml`` files that parsed before (JSON with comments,
  as in ``tsconfig.json``, fails before and is left alone).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
import warnings
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from tree_sitter import Node

from lsp_agent.index.languages import language_for_path, new_parser

MAX_REPORTED = 5


@dataclass(frozen=True)
class SyntaxProblem:
    line: int  # 0-based
    kind: str  # "error" | "missing" (tree-sitter) | "compile" (Python) | "json" | "toml"
    text: str  # the source line, stripped
    message: str = ""  # the checker's own words (compile, json, toml)

    def describe(self) -> str:
        if self.message:
            return f"line {self.line + 1}: {self.message}: {self.text[:160]}"
        what = "missing token" if self.kind == "missing" else "syntax error"
        return f"line {self.line + 1}: {what}: {self.text[:160]}"


def syntax_problems(path: str, text: str) -> list[SyntaxProblem] | None:
    """The ERROR/MISSING nodes of ``text`` parsed as ``path``'s language; None: no grammar."""
    language = language_for_path(path)
    if language is None:
        return None
    source = text.encode("utf-8", "replace")
    root = new_parser(language).parse(source).root_node
    if not root.has_error:
        return []
    lines = text.splitlines()
    problems: list[SyntaxProblem] = []
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            row = node.start_point[0]
            line = lines[row].strip() if row < len(lines) else ""
            problems.append(SyntaxProblem(row, "missing" if node.is_missing else "error", line))
            continue
        stack.extend(c for c in reversed(node.children) if c.has_error or c.is_missing)
    return sorted(problems, key=lambda p: p.line)


def new_syntax_errors(path: str, before: str, after: str) -> list[SyntaxProblem]:
    """Problems in ``after`` that ``before`` did not have: tree-sitter's first, then the
    language's own check (see the module docstring)."""
    return _new_tree_errors(path, before, after) or _new_check_errors(path, before, after)


def _new_tree_errors(path: str, before: str, after: str) -> list[SyntaxProblem]:
    """Tree-sitter problems in ``after`` that ``before`` did not have (compared by kind and
    line text, so lines that merely moved are not new)."""
    after_problems = syntax_problems(path, after)
    if not after_problems:
        return []
    before_problems = syntax_problems(path, before) or []
    old = Counter((p.kind, p.text) for p in before_problems)
    fresh: list[SyntaxProblem] = []
    for problem in after_problems:
        key = (problem.kind, problem.text)
        if old[key] > 0:
            old[key] -= 1
        else:
            fresh.append(problem)
    if not fresh and len(after_problems) > len(before_problems):
        fresh = after_problems[:1]  # more errors than before, even if their lines look familiar
    return fresh


def _new_check_errors(path: str, before: str, after: str) -> list[SyntaxProblem]:
    kind = _CHECKS.get(path.rsplit(".", 1)[-1].lower()) if "." in path else None
    if kind is None or not after.strip():
        return []
    problem = _check(kind, after)
    if problem is None or (kind == "compile" and problem.message.startswith(_GRAMMAR_ERRORS)):
        return []
    old = _check(kind, before) if before.strip() else None
    if old is None:
        return [problem]
    if kind != "compile" or (old.message, old.text) == (problem.message, problem.text):
        return []  # broken before: a data file's error positions move; the same error is old
    return [problem] if problem.line in _written_lines(before, after) else []


_CHECKS = {"py": "compile", "pyi": "compile", "json": "json", "toml": "toml"}
# Grammar errors are tree-sitter's to judge (its grammar follows the newest Python): this
# interpreter's parser also says them of newer syntax (``type X = int``, PEP 695 generics, 3.12
# f-strings on 3.11), which must not refuse an edit to a project on a newer Python.
_GRAMMAR_ERRORS = ("invalid syntax", "expected '", "f-string: ")
_TOML_LINE = re.compile(r"at line (\d+)")


@lru_cache(maxsize=32)  # a coder's "before" is its previous "after": checked once
def _check(kind: str, text: str) -> SyntaxProblem | None:
    lines = text.splitlines()

    def at(line: int, message: str) -> SyntaxProblem:
        row = min(max(line, 0), max(len(lines) - 1, 0))
        source = lines[row].strip() if lines else ""
        return SyntaxProblem(row, kind, source, message)

    if kind == "compile":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning (invalid escapes) is not an error
            try:
                compile(text, "<edit>", "exec", dont_inherit=True)
            except SyntaxError as exc:
                return at((exc.lineno or 1) - 1, exc.msg)
            except (ValueError, MemoryError, RecursionError) as exc:
                return at(0, str(exc))
        return None
    if kind == "json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return at(exc.lineno - 1, f"invalid JSON: {exc.msg}")
        except RecursionError:
            return None
        return None
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's error has no lineno attribute; its message ends "(at line N, column M)".
        where = _TOML_LINE.search(str(exc))
        return at(int(where.group(1)) - 1 if where else 0, f"invalid TOML: {exc}")
    return None


def _written_lines(before: str, after: str) -> set[int]:
    """0-based lines of ``after`` that the edit wrote (not kept from ``before``)."""
    matcher = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), autojunk=False)
    out: set[int] = set()
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            out.update(range(j1, j2))
    return out


def describe(path: str, problems: list[SyntaxProblem]) -> str:
    rows = [p.describe() for p in problems[:MAX_REPORTED]]
    more = len(problems) - MAX_REPORTED
    if more > 0:
        rows.append(f"... and {more} more")
    verb = "compiles" if any(p.kind == "compile" for p in problems) else "parses"
    return f"{path} no longer {verb}:\n" + "\n".join(rows)
