"""Parse one file and run its language's tags query: definitions, references, syntax errors.

The query's captures follow the tags.scm convention: ``@definition.<kind>`` on the whole
definition and ``@name`` on its name; ``@reference.<kind>`` on the use and ``@name`` on the
identifier. Everything here is pure (bytes in, records out) so it runs the same in a pool worker.
"""

from __future__ import annotations

import hashlib

from tree_sitter import Node, QueryCursor, Tree

from lsp_agent.index.languages import load_query, new_parser
from lsp_agent.index.model import Definition, FileEntry, Reference

MAX_SIGNATURE = 200  # characters; a minified one-line file must not bloat every record
_CONTAINERS = frozenset({"class", "struct", "interface", "impl", "trait"})
# Definitions of these kinds never enclose others in a meaningful way (a C typedef wrapping a
# struct body, a constant holding an object literal), so they do not open a scope.
_NOT_SCOPES = frozenset({"type", "constant", "variable", "field", "macro"})

Symbols = tuple[tuple[Definition, ...], tuple[Reference, ...], int]


def _line_text(source: bytes, start_byte: int, column: int) -> str:
    line_start = start_byte - column
    line_end = source.find(b"\n", line_start)
    if line_end < 0:
        line_end = len(source)
    line = source[line_start : min(line_end, line_start + 4 * MAX_SIGNATURE)]
    return line.decode("utf-8", "replace").rstrip()[:MAX_SIGNATURE]


def count_syntax_errors(root: Node) -> int:
    """ERROR and MISSING nodes; only subtrees that contain an error are visited."""
    if not root.has_error:
        return 0
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
            continue  # nested errors inside an ERROR node are the same mistake
        stack.extend(child for child in node.children if child.has_error or child.is_missing)
    return count


def extract(language: str, source: bytes, tree: Tree | None = None) -> Symbols:
    """Definitions (sorted by position, with enclosing scopes), references, syntax errors.

    ``tree`` is ``source`` already parsed (incrementally, for an open buffer); else it is parsed.
    """
    if tree is None:
        tree = new_parser(language).parse(source)
    root = tree.root_node
    # definition node id -> (start_byte, end_byte, name, kind, name node, node, pattern)
    found: dict[int, tuple[int, int, str, str, Node, Node, int]] = {}
    raw_refs: list[tuple[int, str, str, int, int]] = []
    for pattern, captures in QueryCursor(load_query(language)).matches(root):
        names = captures.get("name")
        if not names:
            continue
        name_node = names[0]
        for key, nodes in captures.items():
            if key.startswith("definition."):
                node = nodes[0]
                previous = found.get(node.id)
                # Patterns are ordered specific-first: the lowest pattern index wins.
                if previous is None or pattern < previous[6]:
                    found[node.id] = (
                        node.start_byte,
                        node.end_byte,
                        name_node.text.decode("utf-8", "replace"),
                        key[11:],
                        name_node,
                        node,
                        pattern,
                    )
            elif key.startswith("reference."):
                point = name_node.start_point
                raw_refs.append(
                    (
                        name_node.start_byte,
                        name_node.text.decode("utf-8", "replace"),
                        key[10:],
                        point[0],
                        point[1],
                    )
                )

    definitions: list[Definition] = []
    stack: list[tuple[int, str, str]] = []  # enclosing (end_byte, name, kind)
    for start, end, name, kind, name_node, node, _pattern in sorted(
        found.values(), key=lambda item: (item[0], -item[1])
    ):
        while stack and (stack[-1][0] < end or stack[-1][0] <= start):
            stack.pop()
        if kind == "function" and stack and stack[-1][2] in _CONTAINERS:
            kind = "method"
        start_point, end_point = node.start_point, node.end_point
        definitions.append(
            Definition(
                name=name,
                kind=kind,
                start_line=start_point[0],
                start_col=start_point[1],
                end_line=end_point[0],
                end_col=end_point[1],
                signature=_line_text(source, name_node.start_byte, name_node.start_point[1]),
                scope=".".join(item[1] for item in stack),
            )
        )
        if kind not in _NOT_SCOPES:
            stack.append((end, name, kind))

    # Patterns like ``(type_identifier) @name @reference.type`` also match the name of the
    # definition itself; a definition is not a use of itself.
    defined_at = {item[4].start_byte for item in found.values()}
    # One reference per position: where a specific pattern (call, import) and the generic
    # type pattern both match, the specific kind sorts first and wins.
    seen: set[int] = set()
    references: list[Reference] = []
    for start_byte, name, kind, line, col in sorted(raw_refs, key=_ref_order):
        if start_byte in defined_at or start_byte in seen:
            continue
        seen.add(start_byte)
        references.append(Reference(name, kind, line, col))
    return tuple(definitions), tuple(references), count_syntax_errors(root)


def _ref_order(item: tuple[int, str, str, int, int]) -> tuple[int, bool, str]:
    return item[0], item[2] == "type", item[2]


def count_lines(data: bytes) -> int:
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def build_entry(
    path: str,
    language: str | None,
    data: bytes,
    *,
    mtime_ns: int,
    from_buffer: bool = False,
    sha256: str | None = None,
    tree: Tree | None = None,
) -> FileEntry:
    """The FileEntry for ``data`` (raw bytes from disk, or the UTF-8 encoded buffer text)."""
    try:
        data.decode("utf-8")
        decode_errors = False
    except UnicodeDecodeError:
        decode_errors = True
    definitions: tuple[Definition, ...] = ()
    references: tuple[Reference, ...] = ()
    errors = 0
    if language is not None:
        definitions, references, errors = extract(language, data, tree)
    return FileEntry(
        path=path,
        language=language,
        size=len(data),
        mtime_ns=mtime_ns,
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        lines=count_lines(data),
        definitions=definitions,
        references=references,
        decode_errors=decode_errors,
        syntax_errors=errors,
        from_buffer=from_buffer,
    )
