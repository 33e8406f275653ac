"""Edit blocks -> new text, deterministically.

``apply_blocks`` applies SEARCH/REPLACE blocks in sequence down a ladder of match strategies,
each tried only when the stricter ones find nothing:

1. exact, line for line;
2. ignoring trailing whitespace and tab/space differences (REPLACE re-indented in the file's style);
3. a uniform indentation offset (REPLACE shifted by the same offset);
4. without spurious blank lines at the start or end of SEARCH;
5. paired ``...`` lines in SEARCH and REPLACE, matched as gaps that are kept.

Two matches at one level, or none at all, raise ``ApplyError`` with a hint showing the file's
closest lines, so the coder can retry: the applier never guesses. Every block is applied exactly
as meant or refused with a reason; nothing else is written:

- A block with several ``=======``-shaped lines (``EditBlock.splits``) is read at each of them;
  the file decides: the one reading that applies wins (when several apply, the one with the
  longest SEARCH, if the others matched at its first line: the file shows their dividers are its
  own lines); otherwise the block is refused, quoting those lines.
- REPLACE may not elide lines with a comment, nor add marker-shaped lines the file does not
  show belong (``checks``).
- An empty SEARCH fills a new or empty file only; on a file with content it is refused.
- SEARCH missing counts as "already applied" (a no-op) only when the lines REPLACE adds beyond
  SEARCH are all there, in order, at one place (REPLACE matches exactly once); a block that only
  deletes is never taken as applied.

The file keeps its line endings (REPLACE lines take the dominant one) and its final-newline state.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lsp_agent.edits.blocks import EditBlock
from lsp_agent.edits.checks import added_lines, elision_problem, marker_problem
from lsp_agent.edits.text import (
    Line,
    closest_window,
    dominant_eol,
    join_terminated,
    rebase,
    split_terminated,
)

logger = logging.getLogger(__name__)

_TAB_WIDTHS = (4, 8)
_ELLIPSIS = "..."


class ApplyError(Exception):
    """A block could not be applied. ``message`` says why; ``hint`` shows the closest lines of
    the file (or the competing matches) for the coder's retry. ``index`` is the failing block
    (0-based) and ``partial`` the text after the blocks before it were applied."""

    def __init__(self, message: str, hint: str = "", *, index: int = -1, partial: str = "") -> None:
        super().__init__(message + (f"\n{hint}" if hint else ""))
        self.message = message
        self.hint = hint
        self.index = index
        self.partial = partial

    def __reduce__(self) -> tuple[object, ...]:
        # Keeps the fields when the error crosses a process boundary (pickle).
        return (
            type(self),
            (self.message, self.hint),
            {"index": self.index, "partial": self.partial},
        )


@dataclass
class ApplyResult:
    text: str
    notes: list[str] = field(default_factory=list)  # per block: how it matched, or why a no-op
    # The blocks as applied: a block with several divider-shaped lines holds the reading the
    # file decided on (``splits`` empty), so re-applying it elsewhere means the same thing.
    blocks: list[EditBlock] = field(default_factory=list)


@dataclass(frozen=True)
class _Match:
    start: int
    end: int  # exclusive
    offset: int | None  # None: exact (REPLACE verbatim); else an indentation shift in columns
    tab: int = 4

    def describe(self) -> str:
        where = _line_span(self.start, self.end)
        if self.offset is None:
            return f"exact match at {where}"
        if self.offset == 0:
            return f"matched ignoring whitespace at {where}"
        return f"matched with indentation offset {self.offset:+d} at {where}"


class _BlockFailure(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def apply_blocks(original: str, blocks: Sequence[EditBlock]) -> str:
    """Apply ``blocks`` (all for one file; their paths only label messages) to ``original`` in
    sequence and return the new text (see the module docstring). Raises ``ApplyError`` at the
    first block that cannot be applied; nothing is half-applied within a block."""
    return apply_blocks_detailed(original, blocks).text


def apply_blocks_detailed(original: str, blocks: Sequence[EditBlock]) -> ApplyResult:
    """Like ``apply_blocks``, also returning one note per block on how it applied."""
    # A byte-order mark is not part of the first line as far as SEARCH is concerned.
    bom = "\ufeff" if original.startswith("\ufeff") else ""
    lines = split_terminated(original[len(bom) :])
    eol = dominant_eol(lines)
    final_newline = original.endswith("\n") or not original[len(bom) :]
    notes: list[str] = []
    applied: list[EditBlock] = []
    for index, block in enumerate(blocks):
        label = f"block {index + 1} ({block.path})"
        try:
            lines, note, chosen = _apply_block(lines, block, eol)
        except _BlockFailure as failure:
            partial = bom + join_terminated(lines, eol, final_newline)
            raise ApplyError(
                f"{label}: {failure.message}", failure.hint, index=index, partial=partial
            ) from None
        logger.debug("%s: %s", label, note)
        notes.append(f"{label}: {note}")
        applied.append(chosen)
    return ApplyResult(bom + join_terminated(lines, eol, final_newline), notes, applied)


def _apply_block(
    lines: list[Line], block: EditBlock, eol: str
) -> tuple[list[Line], str, EditBlock]:
    """Apply one block; a block with several readings is applied as the file decides."""
    if not block.splits:
        new_lines, note, _ = _apply_one(lines, block.search, block.replace, eol)
        return new_lines, note, block
    applied: list[tuple[int, list[Line], str, int]] = []  # reading, lines, note, match start
    failures: list[_BlockFailure] = []
    for k, (search, replace) in enumerate(block.splits):
        try:
            new_lines, note, start = _apply_one(lines, search, replace, eol, must_match=True)
        except _BlockFailure as failure:
            failures.append(failure)
            continue
        applied.append((k, new_lines, note, start))
    quoted = _quote_dividers(block)
    if not applied:
        raise _BlockFailure(
            f"the block has {len(block.splits)} lines shaped like the '=======' divider "
            f"({quoted}) and no reading of it applies: split at each of them, SEARCH is not "
            "found exactly once or REPLACE is refused. Use exactly one '=======' line between "
            "SEARCH and REPLACE and end the block with '>>>>>>> REPLACE'",
            "Reading at the first of those lines: "
            + failures[0].message
            + (f"\n{failures[0].hint}" if failures[0].hint else ""),
        )
    texts = {tuple(new_lines) for _, new_lines, _, _ in applied}
    if len(texts) > 1:
        longest = max(applied, key=lambda item: len(block.splits[item[0]][0]))
        if any(start != longest[3] or start < 0 for _, _, _, start in applied):
            where = ", ".join(f"at divider {k + 1}" for k, *_ in applied)
            raise _BlockFailure(
                f"the block has {len(block.splits)} lines shaped like the '=======' divider "
                f"({quoted}) and it applies in different places depending on which one divides "
                f"SEARCH from REPLACE ({where}); refused rather than guessed. Add lines to SEARCH "
                "so that only one reading matches, or make the block smaller"
            )
        applied = [longest]
    k, new_lines, note, _ = applied[0]
    search, replace = block.splits[k]
    chosen = EditBlock(block.path, search, replace)
    divider = f"read at the divider-shaped line {k + 1} of {len(block.splits)}"
    return new_lines, f"{note} ({divider}; the file decided)", chosen


def _quote_dividers(block: EditBlock) -> str:
    """Each divider-shaped line as "block line N: '====='" (N counts from the SEARCH marker)."""
    first_search = len(_block_lines(block.splits[0][0]))
    last_search = _block_lines(block.splits[-1][0])
    first_replace = _block_lines(block.splits[0][1])
    rows = []
    for search, _ in block.splits:
        at = len(_block_lines(search))
        text = last_search[at] if at < len(last_search) else first_replace[at - first_search - 1]
        rows.append(f"block line {at + 1}: {text.strip()!r}")
    return ", ".join(rows)


def _apply_one(
    lines: list[Line], search_text: str, replace_text: str, eol: str, *, must_match: bool = False
) -> tuple[list[Line], str, int]:
    """Apply one reading: (new lines, note, first matched line or -1). ``must_match``: count
    it only if SEARCH matches (no no-op outcome), for choosing between the readings of a block
    with several divider-shaped lines."""
    search, replace = _block_lines(search_text), _block_lines(replace_text)
    contents = [content for content, _ in lines]
    if search == replace and not must_match:
        return lines, "SEARCH and REPLACE are identical: nothing to do", -1
    if problem := elision_problem(search, replace):
        raise _BlockFailure(problem)
    if problem := marker_problem(search, replace, contents):
        raise _BlockFailure(problem)
    if all(not s.strip() for s in search):
        if not any(c.strip() for c in contents):
            return [(r, eol) for r in replace], "empty SEARCH on an empty file: inserted", 0
        raise _BlockFailure(
            "an empty SEARCH section only creates a new file or fills an empty one, and this "
            f"file has {len(contents)} lines; nothing was appended. To add lines, put in SEARCH "
            "the lines the new ones go next to, and repeat them in REPLACE with the new lines",
            "The file ends with:\n" + "\n".join(contents[-5:]),
        )
    match = _find_unique(contents, search)
    if match is None:
        trimmed = _trim_blank_edges(search, replace)
        if trimmed is not None:
            match = _find_unique(contents, trimmed[0])
            if match is not None:
                search, replace = trimmed
                new_lines = _substitute(lines, match, search, replace, eol)
                note = match.describe() + ", ignoring blank lines at SEARCH's edges"
                return new_lines, note, match.start
    if match is not None:
        return _substitute(lines, match, search, replace, eol), match.describe(), match.start
    if any(s.strip() == _ELLIPSIS for s in search):
        return (*_apply_elided(lines, search, replace, eol), -1)
    if not must_match and _already_applied(contents, search, replace):
        note = "already applied: SEARCH not found, and REPLACE's new lines are present"
        return lines, note, -1
    raise _BlockFailure("SEARCH text not found in the file", _closest_hint(contents, search))


def _already_applied(contents: list[str], search: list[str], replace: list[str]) -> bool:
    """The lines REPLACE adds beyond SEARCH are all present, in order, at one place: REPLACE
    matches the file exactly once. A REPLACE that adds nothing (a deletion) never counts."""
    added = [j for j in added_lines(search, replace) if replace[j].strip()]
    return bool(added) and len(_find_all(contents, replace)) == 1


def _find_unique(contents: list[str], search: list[str], lo: int = 0) -> _Match | None:
    matches = _find_all(contents, search, lo)
    if len(matches) > 1:
        raise _BlockFailure(
            f"SEARCH matches {len(matches)} places ("
            + ", ".join(_line_span(m.start, m.end) for m in matches[:5])
            + "); add surrounding lines to SEARCH so that it matches exactly one",
            _ambiguity_hint(contents, matches),
        )
    return matches[0] if matches else None


def _find_all(contents: list[str], search: list[str], lo: int = 0) -> list[_Match]:
    """All matches at the strictest ladder level that has any (levels 1-3)."""
    m = len(search)
    exact = [
        _Match(i, i + m, None)
        for i in range(lo, len(contents) - m + 1)
        if contents[i] == search[0] and contents[i : i + m] == search
    ]
    if exact:
        return exact
    has_tabs = any("\t" in _indent(s) for s in [*contents, *search])
    by_tab = [
        _loose_matches(contents, search, lo, tab)
        for tab in (_TAB_WIDTHS if has_tabs else _TAB_WIDTHS[:1])
    ]
    # No shift at some tab width beats a shift at any: it tells how many spaces the model
    # wrote per tab, which decides how REPLACE's new lines are converted back to tabs.
    for loose in by_tab:
        if unshifted := [found for found in loose if found.offset == 0]:
            return unshifted
    return next((loose for loose in by_tab if loose), [])


def _loose_matches(contents: list[str], search: list[str], lo: int, tab: int) -> list[_Match]:
    keys = [(_width(c, tab), c.strip()) for c in contents]
    wanted = [(_width(s, tab), s.strip()) for s in search]
    anchor = next(k for k, (_, text) in enumerate(wanted) if text)
    found: list[_Match] = []
    for i in range(lo, len(contents) - len(search) + 1):
        if keys[i + anchor][1] != wanted[anchor][1]:
            continue
        offset: int | None = None
        for (width, text), (want_width, want_text) in zip(keys[i:], wanted, strict=False):
            if text != want_text:
                break
            if not text:
                continue
            if offset is None:
                offset = width - want_width
            elif offset != width - want_width:
                break
        else:
            found.append(_Match(i, i + len(search), offset or 0, tab))
    return found


def _substitute(
    lines: list[Line], match: _Match, search: list[str], replace: list[str], eol: str
) -> list[Line]:
    """Replace the matched lines. Lines that REPLACE keeps from SEARCH keep the file's own text
    (its whitespace, its terminators), so the resulting diff is as small as the intent."""
    region = lines[match.start : match.end]
    use_tabs = _uses_tabs([c for c, _ in region]) or (
        not _indented([c for c, _ in region]) and _uses_tabs([c for c, _ in lines])
    )
    out: list[Line] = []
    matcher = difflib.SequenceMatcher(None, search, replace, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(region[i1:i2])
            continue
        for text in replace[j1:j2]:
            if match.offset is not None:
                text = _reindent(text, match.offset, match.tab, use_tabs)
            out.append((text, eol))
    return lines[: match.start] + out + lines[match.end :]


def _apply_elided(
    lines: list[Line], search: list[str], replace: list[str], eol: str
) -> tuple[list[Line], str]:
    """SEARCH and REPLACE cut into pieces at their ``...`` lines; piece k of SEARCH becomes
    piece k of REPLACE and whatever lies between the pieces in the file is kept."""
    search_pieces, replace_pieces = _split_ellipsis(search), _split_ellipsis(replace)
    if len(search_pieces) != len(replace_pieces):
        raise _BlockFailure(
            f"unpaired '...' elision: SEARCH has {len(search_pieces) - 1} '...' lines and "
            f"REPLACE has {len(replace_pieces) - 1}; use the same number in both, in the "
            "same places, or spell the lines out"
        )
    cursor = 0
    spans: list[str] = []
    for search_piece, replace_piece in zip(search_pieces, replace_pieces, strict=True):
        if not any(s.strip() for s in search_piece):
            if any(r.strip() for r in replace_piece):
                raise _BlockFailure(
                    "REPLACE adds lines next to a '...' where SEARCH has none to anchor them"
                )
            continue
        contents = [content for content, _ in lines]
        match = _find_unique(contents, search_piece, cursor)
        if match is None:
            raise _BlockFailure(
                "a piece of SEARCH between '...' lines was not found after the previous piece",
                _closest_hint(contents[cursor:], search_piece, first_line=cursor),
            )
        before = len(lines)
        lines = _substitute(lines, match, search_piece, replace_piece, eol)
        cursor = match.end + len(lines) - before
        spans.append(match.describe())
    return lines, "matched with '...' elision: " + "; ".join(spans)


def _split_ellipsis(lines: list[str]) -> list[list[str]]:
    pieces: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == _ELLIPSIS:
            pieces.append([])
        else:
            pieces[-1].append(line)
    return pieces


def _trim_blank_edges(search: list[str], replace: list[str]) -> tuple[list[str], list[str]] | None:
    """SEARCH without leading/trailing blank lines (REPLACE loses as many as it has of them),
    or None when SEARCH has none."""
    lead = _count_blank(search)
    trail = _count_blank(search[::-1])
    if not lead and not trail:
        return None
    replace_lead = min(lead, _count_blank(replace))
    replace_trail = min(trail, _count_blank(replace[replace_lead:][::-1]))
    new_search = search[lead : len(search) - trail]
    new_replace = replace[replace_lead : len(replace) - replace_trail]
    return new_search, new_replace


def _count_blank(lines: list[str]) -> int:
    count = 0
    for line in lines:
        if line.strip():
            break
        count += 1
    return count


def _closest_hint(contents: list[str], search: list[str], *, first_line: int = 0) -> str:
    """The window of the file most similar to SEARCH (difflib), as text the coder can copy."""
    if not contents:
        return "The file is empty: use an empty SEARCH section to add to it."
    span = closest_window(contents, search)
    if span is None:
        return "No similar lines were found in the file; read the file again before retrying."
    start, end = span
    excerpt = "\n".join(contents[start:end])
    return (
        f"The closest lines in the file are {_line_span(first_line + start, first_line + end)}:\n"
        f"{excerpt}\n"
        "SEARCH must repeat lines of the file exactly, including whitespace and comments."
    )


def _ambiguity_hint(contents: list[str], matches: list[_Match]) -> str:
    parts = []
    for m in matches[:5]:
        lo, hi = max(0, m.start - 2), min(len(contents), m.end + 2)
        parts.append(f"{_line_span(lo, hi)}:\n" + "\n".join(contents[lo:hi]))
    return "The matches, with the lines around them:\n" + "\n---\n".join(parts)


def _line_span(start: int, end: int) -> str:
    """0-based [start, end) as the 1-based lines people read."""
    return f"line {start + 1}" if end - start <= 1 else f"lines {start + 1}-{end}"


def _width(line: str, tab: int) -> int:
    return len(_indent(line).expandtabs(tab))


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _indented(contents: list[str]) -> bool:
    return any(_indent(c) for c in contents if c.strip())


def _uses_tabs(contents: list[str]) -> bool:
    tabs = sum(1 for c in contents if c.startswith("\t") and c.strip())
    spaces = sum(1 for c in contents if c.startswith(" ") and c.strip())
    return tabs > spaces


def _reindent(text: str, offset: int, tab: int, use_tabs: bool) -> str:
    if not text.strip():
        return ""
    width = _width(text, tab) + offset
    if width < 0:
        raise _BlockFailure(
            f"REPLACE line {text.strip()!r} would be indented left of column 0 after shifting "
            f"by {offset} columns to match the file; indent SEARCH and REPLACE as in the file"
        )
    indent = "\t" * (width // tab) + " " * (width % tab) if use_tabs else " " * width
    return indent + text.lstrip(" \t")


def _block_lines(text: str) -> list[str]:
    text = text.replace("\r\n", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n") if text else []


def rebase_change(
    original: str, new: str, current: str, blocks: Sequence[Mapping[str, str] | EditBlock]
) -> str | None:
    """A change computed as ``original`` -> ``new``, restated onto ``current`` (the file
    changed underneath): a clean three-way merge, else the change's edit blocks re-applied to
    ``current``; None when neither fits. The one rule for the server (a user typed while the
    task ran) and the batch command (an earlier task of the run changed the file)."""
    if current == original:
        return new
    merged = rebase(original, new, current)
    if merged is not None:
        return merged
    parsed = [b if isinstance(b, EditBlock) else EditBlock(**b) for b in blocks]
    if not parsed:
        return None
    try:
        return apply_blocks(current, parsed)
    except ApplyError:
        return None
