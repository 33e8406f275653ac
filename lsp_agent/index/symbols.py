"""Parse one file and run its language's tags query: definitions, references, syntax errors.

The query's captures follow the tags.scm convention: ``@definition.<kind>`` on the whole
definition and ``@name`` on its name; ``@reference.<kind>`` on the use and ``@name`` on the
identifier. Everything here is pure (bytes in, records out) so it runs the same in a pool worker.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable, Sequence

from tree_sitter import Node, Point, QueryCursor, Tree

from lsp_agent.index.codec import RawEntry, entry_from_raw
from lsp_agent.index.generated import is_generated
from lsp_agent.index.languages import load_query, new_parser
from lsp_agent.index.model import Definition, FileEntry, Reference
from lsp_agent.index.native import extractor
from lsp_agent.index.symtab import NameTable, known_ids

_REF_ORDER = operator.itemgetter(0, 1, 2)  # position, then specific kinds before "type"
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


RawDefinition = tuple[str, str, int, int, int, int, str, str]  # Definition's fields, in order
RawReference = tuple[str, str, int, int]  # Reference's fields, in order
RawSymbols = tuple[tuple[RawDefinition, ...], tuple[RawReference, ...], int]

# language -> pattern index -> (is a definition, capture key, kind, kind == "type") or None
_PATTERN_ROLES: dict[str, dict[int, tuple[bool, str, str, bool] | None]] = {}


def _pattern_role(keys: Iterable[str]) -> tuple[bool, str, str, bool] | None:
    for key in keys:
        head, _, kind = key.partition(".")
        if head in ("definition", "reference") and kind:
            return head == "definition", key, kind, kind == "type"
    return None


def extract_raw(
    language: str,
    source: bytes,
    tree: Tree | None = None,
    rows: tuple[int, int] | None = None,
    enclosing: Sequence[tuple[str, str]] = (),
) -> RawSymbols:
    """Like ``extract`` but plain tuples: what pool workers send and the cache stores, without
    building record objects that would only be taken apart again.

    ``rows`` (first, last; inclusive) limits the query to those lines and keeps only symbols
    that start there; ``enclosing`` then names the (name, kind) definitions around those rows,
    outermost first, for scopes (incremental updates; see incremental.py).

    A whole file from bytes goes to the C extractor when there is one (native.py): the same
    rules as below, without a Python object per capture."""
    if tree is None and rows is None and (native := extractor(language)) is not None:
        return native.extract(source)
    if tree is None:
        tree = new_parser(language).parse(source)
    root = tree.root_node
    cursor = QueryCursor(load_query(language))
    first_row, last_row = rows if rows is not None else (0, 1 << 62)
    if rows is not None:
        cursor.set_point_range(Point(first_row, 0), Point(last_row + 1, 0))
    # definition node id -> (start_byte, -end_byte, pattern, name node, node, kind)
    found: dict[int, tuple[int, int, int, Node, Node, str]] = {}
    # (name start_byte, is the generic "type" kind, kind, name node)
    raw_refs: list[tuple[int, bool, str, Node]] = []
    roles = _PATTERN_ROLES.setdefault(language, {})
    ranged = rows is not None
    # This loop runs once per match (hundreds of thousands on a cold index): keep it lean.
    for pattern, captures in cursor.matches(root):
        if pattern in roles:
            role = roles[pattern]
        else:
            role = roles[pattern] = _pattern_role(captures)
        names = captures.get("name")
        if role is None or not names:
            continue
        name_node = names[0]
        is_definition, key, kind, is_type = role
        if is_definition:
            node = captures[key][0]
            if ranged and not first_row <= node.start_point[0] <= last_row:
                continue
            previous = found.get(node.id)
            # Patterns are ordered specific-first: the lowest pattern index wins.
            if previous is None or pattern < previous[2]:
                found[node.id] = (node.start_byte, -node.end_byte, pattern, name_node, node, kind)
        elif not ranged or first_row <= name_node.start_point[0] <= last_row:
            raw_refs.append((name_node.start_byte, is_type, kind, name_node))

    definitions: list[RawDefinition] = []
    # enclosing (end_byte, name, kind); definitions around a row range never end inside it
    stack: list[tuple[int, str, str]] = [
        (1 << 62, name, kind) for name, kind in enclosing if kind not in _NOT_SCOPES
    ]
    for start, neg_end, _pattern, name_node, node, kind in sorted(
        found.values(), key=lambda item: item[:2]
    ):
        end = -neg_end
        while stack and (stack[-1][0] < end or stack[-1][0] <= start):
            stack.pop()
        if kind == "function" and stack and stack[-1][2] in _CONTAINERS:
            kind = "method"
        name = name_node.text.decode("utf-8", "replace")
        start_point, end_point, name_point = node.start_point, node.end_point, name_node.start_point
        definitions.append(
            (
                name,
                kind,
                start_point[0],
                start_point[1],
                end_point[0],
                end_point[1],
                _line_text(source, name_node.start_byte, name_point[1]),
                ".".join(item[1] for item in stack),
            )
        )
        if kind not in _NOT_SCOPES:
            stack.append((end, name, kind))

    # Patterns like ``(type_identifier) @name @reference.type`` also match the name of the
    # definition itself; a definition is not a use of itself. One reference per position: where
    # a specific pattern (call, import) and the generic type pattern both match, the specific
    # kind sorts first and wins.
    seen = {item[3].start_byte for item in found.values()}
    references: list[RawReference] = []
    raw_refs.sort(key=_REF_ORDER)
    for start_byte, _is_type, kind, name_node in raw_refs:
        if start_byte in seen:
            continue
        seen.add(start_byte)
        point = name_node.start_point
        references.append((name_node.text.decode("utf-8", "replace"), kind, point[0], point[1]))
    return tuple(definitions), tuple(references), count_syntax_errors(root)


def extract(language: str, source: bytes, tree: Tree | None = None) -> Symbols:
    """Definitions (sorted by position, with enclosing scopes), references, syntax errors.

    ``tree`` is ``source`` already parsed (incrementally, for an open buffer); else it is parsed.
    """
    definitions, references, errors = extract_raw(language, source, tree)
    return (
        tuple(map(Definition._make, definitions)),
        tuple(map(Reference._make, references)),
        errors,
    )


def count_lines(data: bytes) -> int:
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def raw_entry(
    path: str,
    language: str | None,
    data: bytes,
    *,
    mtime_ns: int,
    sha256: str | None = None,
    tree: Tree | None = None,
    symbols: RawSymbols | None = None,
) -> RawEntry:
    """FileEntry's fields as plain tuples (see codec.py) for ``data``: raw bytes from disk, or
    the UTF-8 encoded buffer text."""
    try:
        data.decode("utf-8")
        decode_errors = False
    except UnicodeDecodeError:
        decode_errors = True
    definitions: tuple[RawDefinition, ...] = ()
    references: tuple[RawReference, ...] = ()
    errors = 0
    if symbols is not None:
        definitions, references, errors = symbols
    elif language is not None:
        definitions, references, errors = extract_raw(language, data, tree)
    return (
        path,
        language,
        len(data),
        mtime_ns,
        sha256 or hashlib.sha256(data).hexdigest(),
        count_lines(data),
        definitions,
        references,
        decode_errors,
        is_generated(data),
        errors,
    )


def build_entry(
    path: str,
    language: str | None,
    data: bytes,
    *,
    mtime_ns: int,
    from_buffer: bool = False,
    sha256: str | None = None,
    tree: Tree | None = None,
    symbols: RawSymbols | None = None,
    table: NameTable | None = None,
    previous: FileEntry | None = None,
) -> FileEntry:
    """The entry for ``data``, its names added to ``table`` (the index's; default: its own).
    ``previous``: the file's entry before this change, whose name ids are looked up first."""
    raw = raw_entry(
        path, language, data, mtime_ns=mtime_ns, sha256=sha256, tree=tree, symbols=symbols
    )
    table = table if table is not None else NameTable()
    hint = known_ids(previous, table)
    return entry_from_raw(raw, table=table, from_buffer=from_buffer, hint=hint)
