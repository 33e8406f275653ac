"""Text-level helpers for edits: LSP text edits in UTF-16 units, unified diffs, three-way rebase,
line endings, and finding the lines closest to a failed SEARCH.

Everything here is pure and deterministic. ``lsp_agent.edits`` re-exports the public names; other
modules import them from there.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# The LSP spec recognises exactly these line terminators (not str.splitlines' \x0c, \u2028, ...).
_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_NEWLINE_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")
_NO_NEWLINE = "\\ No newline at end of file\n"

_HINT_CANDIDATES = 30  # windows scored with difflib when looking for the closest lines

Line = tuple[str, str]  # (content without terminator, terminator: "\n", "\r\n" or "")


@dataclass(frozen=True, slots=True)
class TextEdit:
    """An LSP ``TextEdit``: replace [start, end) with ``new_text``. Lines are 0-based; characters
    are UTF-16 code units (a character outside the BMP counts 2), the LSP default encoding."""

    start_line: int
    start_character: int
    end_line: int
    end_character: int
    new_text: str


Encoding = Literal["utf-16", "utf-8", "utf-32"]  # LSP 3.17 PositionEncodingKind values


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def encoded_len(text: str, encoding: Encoding = "utf-16") -> int:
    """Length of ``text`` in the code units of an LSP position encoding."""
    if encoding == "utf-16":
        return utf16_len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    raise ValueError(f"unknown position encoding {encoding!r}")


def _char_units(char: str, encoding: Encoding) -> int:
    if encoding == "utf-16":
        return 2 if ord(char) > 0xFFFF else 1
    return len(char.encode("utf-8", "surrogatepass")) if encoding == "utf-8" else 1


def split_lsp_lines(text: str) -> list[str]:
    """Split into lines, each keeping its terminator (``\\n``, ``\\r\\n`` or ``\\r``)."""
    return _LSP_LINE.findall(text)


def split_newline_lines(text: str) -> list[str]:
    """Split on ``\\n`` only, keeping it: the unit diff and patch tools work in."""
    return _NEWLINE_LINE.findall(text)


def split_terminated(text: str) -> list[Line]:
    """Split on ``\\n`` into (content, terminator) pairs; a lone ``\\r`` stays in the content."""
    out: list[Line] = []
    for raw in split_newline_lines(text):
        if raw.endswith("\r\n"):
            out.append((raw[:-2], "\r\n"))
        elif raw.endswith("\n"):
            out.append((raw[:-1], "\n"))
        else:
            out.append((raw, ""))
    return out


def dominant_eol(lines: Sequence[Line]) -> str:
    """The terminator new lines should get: CRLF when most lines have it, else LF."""
    crlf = sum(1 for _, end in lines if end == "\r\n")
    lf = sum(1 for _, end in lines if end == "\n")
    return "\r\n" if crlf > lf else "\n"


def join_terminated(lines: Sequence[Line], eol: str, final_newline: bool) -> str:
    """Inverse of ``split_terminated``. A line that stopped being the last one gets ``eol``;
    the last line ends with a terminator exactly when ``final_newline``."""
    last = len(lines) - 1
    return "".join(
        content + (end or eol if i < last or final_newline else "")
        for i, (content, end) in enumerate(lines)
    )


class _LineIndex:
    """Maps between code-point offsets and LSP (line, character) positions of one text, with
    characters counted in the units of a position encoding."""

    def __init__(self, text: str, encoding: Encoding) -> None:
        if encoding not in ("utf-16", "utf-8", "utf-32"):
            raise ValueError(f"unknown position encoding {encoding!r}")
        self.text = text
        self.encoding = encoding
        self.lines = split_lsp_lines(text)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        # A text that ends with a terminator has one more (empty) line to address the EOF on.
        if not self.lines or self.lines[-1][-1:] in ("\n", "\r"):
            self.lines.append("")
        else:
            self.starts.pop()

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset) - 1
        return line, encoded_len(self.text[self.starts[line] : offset], self.encoding)

    def offset(self, line: int, character: int) -> int:
        if line < 0 or character < 0:
            raise ValueError(f"negative position ({line}, {character})")
        if line >= len(self.lines):
            raise ValueError(f"line {line} is past the end of the text ({len(self.lines)} lines)")
        content = self.lines[line].rstrip("\r\n")
        units = 0
        for index, char in enumerate(content):
            if units == character:
                return self.starts[line] + index
            units += _char_units(char, self.encoding)
            if units > character:
                raise ValueError(f"character {character} splits a character on line {line}")
        # The spec says a character past the line's end means the end of the line.
        return self.starts[line] + len(content)


def text_edits(old: str, new: str, *, encoding: Encoding = "utf-16") -> list[TextEdit]:
    """Minimal, non-overlapping, sorted edits that turn ``old`` into ``new``: a line diff, then
    each changed hunk trimmed to the characters that actually differ. Characters are counted in
    ``encoding``'s code units (LSP's default UTF-16 unless the client negotiated another)."""
    if old == new:
        return []
    old_lines, new_lines = split_lsp_lines(old), split_lsp_lines(new)
    index = _LineIndex(old, encoding)
    old_starts = [0]
    for line in old_lines:
        old_starts.append(old_starts[-1] + len(line))
    new_starts = [0]
    for line in new_lines:
        new_starts.append(new_starts[-1] + len(line))
    spans: list[tuple[int, ...]] = []
    for i1, i2, j1, j2 in changed_ranges(old_lines, new_lines):
        start, end = old_starts[i1], old_starts[i2]
        new_start, new_end = new_starts[j1], new_starts[j2]
        spans.append(_trim(old, new, start, end, new_start, new_end))
    if spans:
        floor = spans[-2][1] if len(spans) > 1 else 0  # the previous edit's end
        spans[-1] = _inside_last_line(old, new, *spans[-1], floor=floor)
    edits: list[TextEdit] = []
    for start, end, new_start, new_end in spans:
        start_pos, end_pos = index.position(start), index.position(end)
        edits.append(TextEdit(*start_pos, *end_pos, new[new_start:new_end]))
    return edits


def _trim(old: str, new: str, start: int, end: int, nstart: int, nend: int) -> tuple[int, ...]:
    """Drop the common prefix and suffix of old[start:end] and new[nstart:nend], never leaving a
    boundary between the ``\\r`` and ``\\n`` of a CRLF (that is no position in LSP terms)."""
    while start < end and nstart < nend and old[start] == new[nstart]:
        start, nstart = start + 1, nstart + 1
    while start < end and nstart < nend and old[end - 1] == new[nend - 1]:
        end, nend = end - 1, nend - 1
    while _inside_crlf(old, start) or _inside_crlf(new, nstart):
        start, nstart = start - 1, nstart - 1
    while _inside_crlf(old, end) or _inside_crlf(new, nend):
        end, nend = end + 1, nend + 1
    return start, end, nstart, nend


def _inside_last_line(
    old: str, new: str, start: int, end: int, nstart: int, nend: int, *, floor: int
) -> tuple[int, ...]:
    """An edit that reaches past the final newline (``X\n`` appended at the end: the position
    after the last line) moved one newline back, to the end of the last line (``\nX``): the
    same change, but inside the buffer's lines. Neovim 0.10+ inserts text at a line past the
    end with nvim_buf_set_lines, leaving an extra empty line when the text ends in a newline."""
    eol = "\r\n" if old.endswith("\r\n") else "\n" if old.endswith("\n") else ""
    n = len(eol)
    if not eol or end != len(old) or start - n < floor or old[start - n : start] != eol:
        return start, end, nstart, nend
    replacement = new[nstart:nend]
    if new[nstart - n : nstart] != eol or (replacement and not replacement.endswith(eol)):
        return start, end, nstart, nend
    moved = start - n, end - n, nstart - n, nend - n
    if _inside_crlf(old, moved[0]) or _inside_crlf(old, moved[1]):
        return start, end, nstart, nend  # not a position in LSP terms
    if _inside_crlf(new, moved[2]) or _inside_crlf(new, moved[3]):
        return start, end, nstart, nend
    return moved


def _inside_crlf(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"


def apply_text_edits(text: str, edits: Sequence[TextEdit], *, encoding: Encoding = "utf-16") -> str:
    """Apply LSP text edits (positions refer to ``text`` before any edit, as in LSP).
    Raises ``ValueError`` for overlapping edits or positions that are not in the text."""
    index = _LineIndex(text, encoding)
    spans = []
    for edit in edits:
        start = index.offset(edit.start_line, edit.start_character)
        end = index.offset(edit.end_line, edit.end_character)
        if end < start:
            raise ValueError(f"edit ends before it starts: {edit}")
        spans.append((start, end, edit.new_text))
    # Stable sort keeps the given order of several insertions at one point, as LSP requires.
    spans.sort(key=lambda span: (span[0], span[1]))
    pieces: list[str] = []
    cursor = 0
    for start, end, new_text in spans:
        if start < cursor:
            raise ValueError("overlapping text edits")
        pieces.append(text[cursor:start])
        pieces.append(new_text)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def unified_diff(path: str, old: str, new: str, *, context: int = 3) -> str:
    """A unified diff with ``a/`` and ``b/`` headers that ``git apply`` and ``patch`` accept,
    including the ``\\ No newline at end of file`` marker. Empty when nothing changed."""
    if old == new:
        return ""
    lines = difflib.unified_diff(
        split_newline_lines(old),
        split_newline_lines(new),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
        n=context,
    )
    out: list[str] = []
    for line in lines:
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n")
            out.append(_NO_NEWLINE)
    return "".join(out)


def rebase(base: str, new: str, current: str) -> str | None:
    """Apply the change base -> new onto ``current`` (base changed by someone else), like a
    three-way merge. Returns None when a region the task changed overlaps or touches a region
    changed in ``current`` (adjacent lines count as a conflict, as in git), unless both made the
    very same change there."""
    if current in (base, new):
        return new
    if new == base:
        return current
    base_lines = split_newline_lines(base)
    new_lines = split_newline_lines(new)
    current_lines = split_newline_lines(current)
    ours = _hunks(base_lines, new_lines)
    theirs = _hunks(base_lines, current_lines)
    merged: list[tuple[int, int, list[str]]] = []
    for b1, b2, lines in ours:
        for c1, c2, other in theirs:
            if b1 <= c2 and c1 <= b2 and (b1, b2, lines) != (c1, c2, other):
                return None
        merged.append((b1, b2, lines))
    merged.extend(hunk for hunk in theirs if hunk not in ours)
    merged.sort(key=lambda hunk: (hunk[0], hunk[1]))
    result: list[str] = []
    cursor = 0
    for b1, b2, lines in merged:
        result.extend(base_lines[cursor:b1])
        result.extend(lines)
        cursor = b2
    result.extend(base_lines[cursor:])
    return "".join(result)


def _hunks(a: list[str], b: list[str]) -> list[tuple[int, int, list[str]]]:
    return [(i1, i2, b[j1:j2]) for i1, i2, j1, j2 in changed_ranges(a, b)]


def common_affixes(a: Sequence[str], b: Sequence[str]) -> tuple[int, int]:
    """How many leading and trailing lines ``a`` and ``b`` share (never overlapping)."""
    head = 0
    limit = min(len(a), len(b))
    while head < limit and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < limit - head and a[len(a) - 1 - tail] == b[len(b) - 1 - tail]:
        tail += 1
    return head, tail


def changed_ranges(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int, int, int]]:
    """The (i1, i2, j1, j2) ranges where a[i1:i2] became b[j1:j2], as difflib's non-equal
    opcodes. The common head and tail are cut first: edits are usually local, and difflib's
    cost grows with the length it is given."""
    head, tail = common_affixes(a, b)
    matcher = difflib.SequenceMatcher(
        None, a[head : len(a) - tail], b[head : len(b) - tail], autojunk=False
    )
    return [
        (i1 + head, i2 + head, j1 + head, j2 + head)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def map_lines(old: str, new: str, first: int, last: int) -> tuple[int, int] | None:
    """Lines ``first..last`` (0-based, inclusive) of ``old`` as they are in ``new``, or None
    when an edit touched them (a selection the user typed into cannot be moved honestly)."""
    a, b = old.splitlines(), new.splitlines()
    shift = 0
    for i1, i2, _j1, j2 in changed_ranges(a, b):
        if i2 <= first and (i1 < first or i1 == i2):  # above the range, or inserted before it
            shift = j2 - i2
        elif i1 > last:
            break
        else:
            return None
    return first + shift, last + shift


def closest_window(contents: Sequence[str], search: Sequence[str]) -> tuple[int, int] | None:
    """The [start, end) window of ``contents`` (lines) most similar to ``search`` by difflib's
    ratio on whitespace-stripped lines; None when nothing is at least 0.4 similar."""
    size = min(len(search), len(contents))
    if size == 0:
        return None
    stripped = [c.strip() for c in contents]
    wanted = [s.strip() for s in search]
    wanted_set = {w for w in wanted if w}
    if not wanted_set:
        return None
    # Cheap pass: windows sharing the most whole lines with SEARCH; then difflib picks among them.
    prefix = [0]
    for line in stripped:
        prefix.append(prefix[-1] + (line in wanted_set))
    scores = [prefix[i + size] - prefix[i] for i in range(len(contents) - size + 1)]
    candidates = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:_HINT_CANDIDATES]
    if not scores or scores[candidates[0]] == 0:
        first = next(w for w in wanted if w)
        close = difflib.get_close_matches(first, stripped, n=_HINT_CANDIDATES, cutoff=0.5)
        candidates = sorted({i for i, s in enumerate(stripped) if s in close})[:_HINT_CANDIDATES]
        offset = next(k for k, w in enumerate(wanted) if w)
        candidates = [max(0, min(i - offset, len(contents) - size)) for i in candidates]
    target = "\n".join(wanted)
    best: tuple[float, int] | None = None
    for i in candidates:
        ratio = difflib.SequenceMatcher(None, "\n".join(stripped[i : i + size]), target).ratio()
        if best is None or ratio > best[0]:
            best = (ratio, i)
    if best is None or best[0] < 0.4:
        return None
    return best[1], best[1] + size
