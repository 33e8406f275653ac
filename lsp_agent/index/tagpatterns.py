"""The tags queries (queries/*.scm) as plain pattern trees, for the C extractor's matcher.

tree-sitter's query engine is general (quantifiers, predicates, anchors anywhere) and pays for
it: on C and Python sources it costs a third as much again as parsing. Our tags queries use a
small part of the language: node types, fields, child patterns, alternations, the wildcard
``(_)``, a ``.`` anchor after a last child, and the captures ``@name`` and one
``@definition.<kind>`` or ``@reference.<kind>`` per pattern. ``compile_patterns`` turns a
query in that subset into nested tuples that ``_tags.c`` matches against each node directly.
A query outside the subset gives ``None`` and its language keeps the query engine: the .scm
file stays the one statement of the rules, and the tests hold the two paths to the same output.

A pattern is ``(role, roots)``: ``role`` the name of its definition/reference capture, ``roots``
its alternatives (a top-level ``[...]``). A node is
``(type | None, field | None, captures name, captures role, last, slots)``: ``type`` None is
``(_)``; ``last`` is the anchor (no named sibling may follow); ``slots`` the child patterns in
order, each a tuple of alternatives that may match any child after the previous slot's.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

# (type, field, captures @name, captures the role, last, slots)
PatternNode = tuple[str | None, str | None, bool, bool, bool, tuple[tuple["PatternNode", ...], ...]]
Pattern = tuple[str, tuple[PatternNode, ...]]

MAX_DEPTH = 8  # the C matcher recurses once per level

_TOKEN = re.compile(
    r"""\s+|;[^\n]*
    |(?P<open>[(\[])|(?P<close>[)\]])|(?P<anchor>\.)
    |(?P<capture>@[\w.-]+)
    |(?P<field>[A-Za-z_][\w]*):
    |(?P<word>[A-Za-z_][\w]*)
    |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)


class Unsupported(ValueError):
    """The query uses something outside the subset; its language keeps the query engine."""


@dataclass
class _Node:
    type: str | None
    field: str | None = None
    captures: list[str] = dataclasses.field(default_factory=list)
    last: bool = False
    slots: list[list[_Node]] = dataclasses.field(default_factory=list)


def _tokens(source: str) -> list[tuple[str, str]]:
    out = []
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup
        if kind is None:  # whitespace or a comment
            continue
        if kind == "other":
            raise Unsupported(f"{match.group()!r} at byte {match.start()}")
        out.append((kind, match.group(kind)))
    return out


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise Unsupported("unexpected end of query")
        self.at += 1
        return token

    def alternatives(self, depth: int) -> list[_Node]:
        """One pattern element: a node or an alternation, with its field and captures."""
        if depth > MAX_DEPTH:
            raise Unsupported(f"patterns nested deeper than {MAX_DEPTH}")
        token = self.peek()
        name = None
        if token is not None and token[0] == "field":
            name = self.take()[1]
        kind, text = self.take()
        if kind == "open" and text == "(":
            alts = [self.node(depth)]
        elif kind == "open" and text == "[":
            alts = []
            while (token := self.peek()) is not None and token != ("close", "]"):
                alts.extend(self.alternatives(depth))
            self.take()
            if not alts:
                raise Unsupported("empty alternation")
        else:
            raise Unsupported(f"unsupported pattern element {text!r}")
        captures = []
        while (token := self.peek()) is not None and token[0] == "capture":
            captures.append(self.take()[1][1:])
        for alt in alts:
            if name is not None:
                if alt.field is not None:
                    raise Unsupported("two fields on one node")
                alt.field = name
            alt.captures.extend(captures)
        return alts

    def node(self, depth: int) -> _Node:
        kind, text = self.take()
        if kind != "word":
            raise Unsupported(f"expected a node type, found {text!r}")
        node = _Node(None if text == "_" else text)
        while (token := self.peek()) != ("close", ")"):
            if token is None:
                raise Unsupported("unclosed node")
            if token[0] == "anchor":
                self.take()
                if self.peek() != ("close", ")") or not node.slots:
                    raise Unsupported("an anchor other than after the last child")
                for alt in node.slots[-1]:
                    alt.last = True
                continue
            node.slots.append(self.alternatives(depth + 1))
        self.take()
        return node


def _binds(node: _Node, capture: str) -> tuple[int, int]:
    """The fewest and most times one match of ``node`` binds ``capture``."""
    own = node.captures.count(capture)
    low = high = own
    for slot in node.slots:
        counts = [_binds(alt, capture) for alt in slot]
        low += min(c[0] for c in counts)
        high += max(c[1] for c in counts)
    return low, high


def _all_captures(node: _Node) -> set[str]:
    names = set(node.captures)
    for slot in node.slots:
        for alt in slot:
            names |= _all_captures(alt)
    return names


def _freeze(node: _Node, role: str) -> PatternNode:
    return (
        node.type,
        node.field,
        "name" in node.captures,
        role in node.captures,
        node.last,
        tuple(tuple(_freeze(alt, role) for alt in slot) for slot in node.slots),
    )


def compile_patterns(source: str) -> tuple[Pattern, ...]:
    """The query's patterns in file order (their index is the query engine's pattern index).
    Raises Unsupported for anything outside the subset the matcher implements."""
    parser = _Parser(source)
    patterns: list[Pattern] = []
    while parser.peek() is not None:
        roots = parser.alternatives(0)
        captures = set().union(*(_all_captures(root) for root in roots))
        roles = {c for c in captures if c.split(".")[0] in ("definition", "reference")}
        if len(roles) != 1 or captures - roles - {"name"}:
            raise Unsupported(f"pattern {len(patterns)}: captures {sorted(captures)}")
        (role,) = roles
        for root in roots:
            if root.type is None or root.field is not None or root.last:
                raise Unsupported(f"pattern {len(patterns)}: a wildcard or field at the root")
            # Every match binds each capture once: the matcher keeps one node per capture.
            if _binds(root, "name") != (1, 1) or _binds(root, role) != (1, 1):
                raise Unsupported(f"pattern {len(patterns)}: a capture bound other than once")
        patterns.append((role, tuple(_freeze(root, role) for root in roots)))
    return tuple(patterns)
