"""Per-file renderings at three tiers, cached by (path, sha256) with their real token counts.

Every block ends with a newline plus one blank line, and starts with a non-blank character. With
cl100k's pre-tokenizer that makes token counts additive: count(a + b) == count(a) + count(b) for
two blocks, so a snapshot's total is the sum of cached per-block counts and never needs a full
re-count (tests check the property on real output).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from lsp_agent.context.cutsafe import guard_line, may_hold_cut_secret
from lsp_agent.context.tokens import count_tokens, count_tokens_upto
from lsp_agent.index.model import Definition, FileEntry
from lsp_agent.index.symtab import symbols_of

FULL = "full"
SIGNATURES = "signatures"
PATH = "path"
FOLDER = "folder"  # not listed: counted in its folder's line of the map's last section
OMITTED = "omitted"
OVERVIEW = "overview"  # README/manifest head in the project overview (reported as "full")
TIERS = (FULL, SIGNATURES, PATH)  # best first
TIER_ORDER = {FULL: 0, SIGNATURES: 1, PATH: 2, FOLDER: 3, OMITTED: 4}

_FUNCTION_KINDS = frozenset({"function", "method", "constructor", "lambda"})
_ONE_LINE_KINDS = frozenset({"constant", "variable", "field"})  # a long literal is no signature
_CONTAINER_KINDS = frozenset({"class", "struct", "interface", "trait", "enum"})
_FIELD = re.compile(r"(?:pub(?:\([^)]*\))?\s+)?[A-Za-z_]\w*\s*(?::(?!=)|=(?!=))")
_MAX_DECORATORS = 3
_MAX_FIELDS = 24
_MAX_FIELD_SCAN = 400
_MAX_SIGNATURE_LINES = 6
# A run of one-line top-level constants (C's #define tables, Python's module constants) is one
# definition per line: the signatures of a register header would cost as much as its text. A
# run longer than RUN_LIMIT shows its first RUN_SHOWN lines and one line counting the rest.
_RUN_KINDS = frozenset({"macro", "constant", "variable"})
RUN_LIMIT = 8
RUN_SHOWN = 4
_RUN_GAP = 3  # lines between two members of one run (blank lines, comments)
# Breadth before depth: past this many numbered lines a file's other definitions are listed by
# name only (a header like the kernel's pci.h has 657: its signatures cost 15k tokens).
MAX_SHOWN_LINES = 120
MAX_OVERFLOW_NAMES = 400
HEAD_LINES = 8  # the "signatures" of a file without a grammar: its first lines


def header(path: str, note: str = "") -> str:
    return f"=== {path}{f' ({note})' if note else ''} ===\n"


def block(head: str, body: str) -> str:
    """A block: header, body ending in a newline, and a blank separator line."""
    if body and not body.endswith("\n"):
        body += "\n"
    return head + body + "\n"


def render_full(path: str, text: str) -> str:
    return block(header(path), text)


def render_path(path: str) -> str:
    return f"{path}\n"


def render_signatures(entry: FileEntry, text: str) -> str | None:
    """Definitions with their enclosing scopes, bodies elided, 1-based line numbers; a long run
    of one-line constants shows its first lines and a count of the rest, and past
    MAX_SHOWN_LINES lines the remaining definitions are listed by name. A file without a
    grammar (docs, data) shows its first lines instead."""
    lines = text.splitlines()
    if entry.language is None:
        if len(lines) <= HEAD_LINES:
            return block(header(entry.path), text)
        note = f"first {HEAD_LINES} of {len(lines)} lines"
        return block(header(entry.path, note), "\n".join(lines[:HEAD_LINES]) + "\n")
    shown: dict[int, str] = {}  # 0-based line -> text
    count = len(lines)
    visible = _visible(_records(entry))
    folded = _folded_runs(lines, visible)  # 0-based line -> the count line that replaces the run
    overflow: list[str] = []  # names of the definitions past MAX_SHOWN_LINES
    # Per definition (a kernel map renders 51k): fields by index, the one-line case inline.
    for definition in visible:
        start = definition[_START]
        if start in shown or start >= count or start in folded:
            continue
        if len(shown) >= MAX_SHOWN_LINES:
            overflow.append(definition[_NAME])
            continue
        if start and "@" in lines[start - 1]:
            for number in _decorators(lines, start):
                shown[number] = lines[number].rstrip()
        kind = definition[_KIND]
        if definition[_END] < start:
            pass  # no line at all
        elif _one_line(lines, definition):
            shown[start] = lines[start].rstrip()
        else:
            for offset, line in enumerate(_signature_lines(lines, definition)):
                shown[start + offset] = line
        if kind in _CONTAINER_KINDS:
            for number in _fields(lines, definition):
                shown.setdefault(number, lines[number].rstrip())
    if not shown:
        return block(header(entry.path, "signatures"), "(no definitions)\n")
    # Folded runs past the last shown line belong to the overflow, which names them.
    last = max(shown) + 1 if overflow else len(lines)
    width = len(str(max([*shown, *(n for n in folded if n < last)]) + 1))
    # Numbered lines stand alone: a secret named on a line not shown is withheld (cutsafe.py).
    body = [
        f"{number + 1:>{width}}: "
        + (
            guard_line(shown[number], lines, number)
            if may_hold_cut_secret(lines[number])
            else shown[number]
        )
        if number in shown
        else f"{'':>{width}}  {folded[number]}"
        for number in sorted({*shown, *(n for n in folded if folded[n] and n < last)})
    ]
    if overflow:
        names = list(dict.fromkeys(overflow))
        more = (
            f", and {len(names) - MAX_OVERFLOW_NAMES} more"
            if len(names) > MAX_OVERFLOW_NAMES
            else ""
        )
        body.append(
            f"[... {len(overflow)} more definitions, by name: "
            f"{', '.join(names[:MAX_OVERFLOW_NAMES])}{more}]"
        )
    return block(header(entry.path, "signatures"), "\n".join(body) + "\n")


def _folded_runs(lines: list[str], visible: list[RawDefinition]) -> dict[int, str]:
    """Lines of long constant runs that are not shown: the first hidden line of a run maps to
    its count line, the others to "" (dropped)."""
    folded: dict[int, str] = {}
    run: list[RawDefinition] = []

    def close() -> None:
        if len(run) > RUN_LIMIT:
            hidden = run[RUN_SHOWN:]
            first, last = hidden[0], hidden[-1]
            kind = first[_KIND]
            kinds = f"{kind}s" if all(d[_KIND] == kind for d in hidden) else "constants"
            folded.update((d[_START], "") for d in hidden)
            folded[first[_START]] = (
                f"[... {len(hidden)} more {kinds}, lines {first[_START] + 1}-"
                f"{last[_START] + 1}: {first[_NAME]} ... {last[_NAME]}]"
            )
        run.clear()

    count = len(lines)
    for d in visible:
        start = d[_START]
        member = (
            d[_KIND] in _RUN_KINDS
            and not d[_SCOPE]
            and start < count
            and not lines[start].rstrip().endswith("\\")  # a macro continued below
            and _one_line(lines, d)
        )
        if member and run and start - run[-1][_START] <= _RUN_GAP:
            run.append(d)
            continue
        if run:
            close()
        if member:
            run.append(d)
    close()
    return folded


def _decorators(lines: list[str], start: int) -> list[int]:
    """Decorator lines right above a definition (``@dataclass(frozen=True)`` says a lot)."""
    numbers: list[int] = []
    number = start - 1
    while number >= 0 and len(numbers) < _MAX_DECORATORS and lines[number].lstrip().startswith("@"):
        numbers.append(number)
        number -= 1
    return numbers


def _fields(lines: list[str], definition: RawDefinition) -> list[int]:
    """Field and attribute lines directly in a class or struct body (``name: str = ""``): a
    record's fields are its interface. Lines inside docstrings and nested blocks are skipped."""
    numbers: list[int] = []
    indent: int | None = None
    in_string = False
    start = definition[_START]
    last = min(definition[_END], len(lines) - 1, start + _MAX_FIELD_SCAN)
    for number in range(start + 1, last + 1):
        line = lines[number]
        stripped = line.strip()
        if not stripped:
            continue
        quotes = line.count('"""') + line.count("'''")
        if in_string or quotes:
            in_string = in_string != (quotes % 2 == 1)
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth == indent and _FIELD.match(stripped):
            numbers.append(number)
            if len(numbers) >= _MAX_FIELDS:
                break
    return numbers


# A definition's fields as the index stores them (model.Definition's order): render reads the
# records' tuples as they are decoded, without making a Definition of each.
RawDefinition = tuple[Any, ...]
_NAME, _KIND, _START, _START_COL, _END, _SCOPE = map(
    Definition._fields.index, ("name", "kind", "start_line", "start_col", "end_line", "scope")
)
_POSITION = itemgetter(_START, _START_COL, _NAME)  # in C: 51k keys in a kernel 1M map


def _records(entry: FileEntry) -> tuple[RawDefinition, ...]:
    """The entry's definitions as tuples, in one decode (an index entry's records are read
    from the cache on each pass over them)."""
    symbols = symbols_of(entry)
    return symbols.raw()[0] if symbols is not None else tuple(entry.definitions)


def _visible(definitions: tuple[RawDefinition, ...]) -> list[RawDefinition]:
    """Skip definitions nested in functions (locals say little about a file's interface)."""
    ordered = sorted(definitions, key=_POSITION)
    if not any(map(itemgetter(_SCOPE), definitions)):
        return ordered  # most of a C file's are top level: nothing encloses them
    kinds: dict[str, str] = {}
    for d in definitions:
        kinds.setdefault(f"{d[_SCOPE]}.{d[_NAME]}" if d[_SCOPE] else d[_NAME], d[_KIND])
    visible = []
    for d in ordered:
        if d[_SCOPE]:
            parts = d[_SCOPE].split(".")
            scopes = [".".join(parts[: i + 1]) for i in range(len(parts))]
            if any(kinds.get(s) in _FUNCTION_KINDS for s in scopes):
                continue
        visible.append(d)
    return visible


def _one_line(lines: list[str], definition: RawDefinition) -> bool:
    """``len(_signature_lines(lines, definition)) == 1`` for a definition that starts inside
    ``lines``, without making the lines (a kernel header asks it of thousands of macros)."""
    start, end = definition[_START], definition[_END]
    if end < start:
        return False  # no line at all
    if definition[_KIND] in _ONE_LINE_KINDS or min(end, len(lines) - 1) <= start:
        return True
    count = lines[start].rstrip().count
    return count("(") + count("[") + count("{") - count(")") - count("]") - count("}") <= 0


def _signature_lines(lines: list[str], definition: RawDefinition) -> list[str]:
    """The definition's first line, continued while brackets are open (multi-line parameter
    lists), never past the definition's end."""
    out: list[str] = []
    depth = 0
    start = definition[_START]
    extra = 0 if definition[_KIND] in _ONE_LINE_KINDS else _MAX_SIGNATURE_LINES - 1
    last = min(definition[_END], start + extra, len(lines) - 1)
    for number in range(start, last + 1):
        line = lines[number].rstrip()
        out.append(line)
        if number == last:
            break  # no line follows: its brackets decide nothing
        count = line.count  # no generator: a kernel signatures render asks ~40k lines
        depth += count("(") + count("[") + count("{") - count(")") - count("]") - count("}")
        if depth <= 0:
            break
    return out


def truncate_full(path: str, text: str, max_tokens: int) -> tuple[str, int]:
    """The longest line-prefix of the file whose full block fits ``max_tokens``, with a marker
    saying how much is shown. Returns (block, tokens); an empty block when even the header does
    not fit."""
    lines = text.splitlines(keepends=True)

    def make(k: int) -> str:
        note = f"truncated: first {k} of {len(lines)} lines"
        body = "".join(lines[:k])
        return block(header(path, note), body + f"[... {len(lines) - k} more lines not shown]\n")

    lo, hi = 0, len(lines)
    if count_tokens(make(0)) > max_tokens:
        return "", 0
    while lo < hi:  # largest k with make(k) fitting
        mid = (lo + hi + 1) // 2
        if count_tokens(make(mid)) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    rendered = make(lo)
    return rendered, count_tokens(rendered)


@dataclass
class _Cached:
    sha256: str
    blocks: dict[str, str | None] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    floors: dict[str, int] = field(default_factory=dict)  # tier -> the count is at least this


class RenderCache:
    """Rendered tiers and token counts per file, valid while the file's sha256 is unchanged.

    Thread-safe; renders lazily, so a rebuild after one edit re-renders one file."""

    def __init__(self) -> None:
        self._files: dict[str, _Cached] = {}
        # A path block depends on the path alone: its count is kept by path, with no slot per
        # file (a kernel map lists 6k files by path, each asked four times).
        self._path_tokens: dict[str, int] = {}
        self._lock = threading.Lock()

    def _slot(self, entry: FileEntry) -> _Cached:
        cached = self._files.get(entry.path)
        if cached is None or cached.sha256 != entry.sha256:
            cached = _Cached(entry.sha256)
            self._files[entry.path] = cached
        return cached

    def render(self, entry: FileEntry, tier: str, text: Callable[[], str]) -> str | None:
        if tier == PATH:
            return render_path(entry.path)
        with self._lock:
            cached = self._slot(entry)
            if tier not in cached.blocks:
                if tier == FULL:
                    cached.blocks[tier] = render_full(entry.path, text())
                elif tier == SIGNATURES:
                    cached.blocks[tier] = render_signatures(entry, text())
                elif tier == OVERVIEW:
                    from lsp_agent.context.overview import render_overview_file

                    cached.blocks[tier] = render_overview_file(entry.path, text())
                else:  # folder, omitted: what the map lists is the path
                    cached.blocks[tier] = render_path(entry.path)
            return cached.blocks[tier]

    def tokens(
        self, entry: FileEntry, tier: str, text: Callable[[], str], *, limit: int | None = None
    ) -> int | None:
        """Real token count of the tier's block; None when the tier does not exist. With a
        ``limit``, a block over it may get a number over the limit that is only a lower bound
        (enough to know it does not fit, and much cheaper for a large file)."""
        if tier == PATH:
            count = self._path_tokens.get(entry.path)
            if count is None:  # counted twice at worst, by two threads: the same number
                count = self._path_tokens[entry.path] = count_tokens(render_path(entry.path))
            return count
        rendered = self.render(entry, tier, text)
        if rendered is None:
            return None
        with self._lock:
            cached = self._slot(entry)
            if tier in cached.tokens:
                return cached.tokens[tier]
            if limit is not None:
                floor = cached.floors.get(tier, -1)
                if floor > limit:
                    return floor
                count = count_tokens_upto(rendered, limit)
                if count > limit:
                    cached.floors[tier] = count
                    return count
            else:
                count = count_tokens(rendered)
            cached.tokens[tier] = count
            return count

    def forget(self, keep: set[str]) -> None:
        """Drop files no longer in the workspace."""
        with self._lock:
            for path in [p for p in self._files if p not in keep]:
                del self._files[path]
            for path in [p for p in self._path_tokens if p not in keep]:
                del self._path_tokens[path]
