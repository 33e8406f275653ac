"""Syntax check of a coder's result: parse before and after with tree-sitter, compare errors.

Only NEW errors count: a file that was already broken (the user is mid-edit) must not block a
fix elsewhere in it. A file with no grammar passes. Uses the index's language table, so the
languages the index understands are exactly the languages that are checked.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tree_sitter import Node

from lsp_agent.index.languages import language_for_path, new_parser

MAX_REPORTED = 5


@dataclass(frozen=True)
class SyntaxProblem:
    line: int  # 0-based
    kind: str  # "error" | "missing"
    text: str  # the source line, stripped

    def describe(self) -> str:
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
    """Problems in ``after`` that ``before`` did not have (compared by kind and line text, so
    lines that merely moved are not new)."""
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


def describe(path: str, problems: list[SyntaxProblem]) -> str:
    rows = [p.describe() for p in problems[:MAX_REPORTED]]
    more = len(problems) - MAX_REPORTED
    if more > 0:
        rows.append(f"... and {more} more")
    return f"{path} no longer parses:\n" + "\n".join(rows)
