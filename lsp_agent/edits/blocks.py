"""Parse SEARCH/REPLACE edit blocks out of a model's plain-text answer.

The format (aider's "diff" format)::

    path/to/file.py
    <<<<<<< SEARCH
    lines to find
    =======
    lines to put instead
    >>>>>>> REPLACE

Tolerated: markdown fences around or inside the block, the path in backticks, bold or as a
heading, several blocks per file with the path omitted on later ones. A block that never reaches
``>>>>>>> REPLACE`` is an error, never a block: a truncated answer must not be half-applied.
A coder that leaves its file unchanged says so with a line of its own reading
``NO CHANGES NEEDED`` (``decline_reason``); a reply with neither blocks nor that line is a format
error. ``lsp_agent.edits`` re-exports the public names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEARCH = re.compile(r"^\s*<{5,9} ?SEARCH\b.*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9} ?REPLACE\b.*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[\w+#.-]*\s*$")
# How far above a SEARCH marker the path line may sit (blank and fence lines do not count).
_PATH_LOOKBACK = 3
# A path wholly in backticks may contain spaces: `docs/my notes.md` (optionally bold or a heading).
_QUOTED_PATH = re.compile(r"^[#*\s]*(?:[Ff]ile:\s*)?`([^`]+)`[*:\s]*$")
# The one way a coder declines its file (docs/protocol.md): a line starting with the words, in
# capitals (markdown emphasis, backticks, a final period tolerated), maybe then ":" and a reason.
DECLINE_STATEMENT = "NO CHANGES NEEDED"
_DECLINE = re.compile(
    r"^[\s*_`>#-]*NO CHANGES NEEDED[*_`]*(?:[.!]|\s*[:\u2014-]\s*(?P<reason>.*?))?[\s*_`]*$"
)


@dataclass(frozen=True, slots=True)
class EditBlock:
    """One SEARCH/REPLACE pair. ``search`` and ``replace`` hold whole lines, each ending in
    ``\\n`` (empty string for an empty section). ``path`` is as the model wrote it, cleaned of
    markdown; check it with ``edits.safe_path`` before use.

    ``splits`` is set when the block has more than one line shaped like the ``=======`` divider
    (a setext heading underline, a merge-conflict line, an ASCII rule): every (search, replace)
    reading, one per such line, in order, and ``search``/``replace`` hold only the first. The
    applier lets the file decide between them; ``ApplyResult.blocks`` holds the reading it took.
    """

    path: str
    search: str
    replace: str
    splits: tuple[tuple[str, str], ...] = ()

    def readings(self) -> tuple[tuple[str, str], ...]:
        return self.splits or ((self.search, self.replace),)


def parse_edit_blocks(text: str) -> tuple[list[EditBlock], list[str]]:
    """Return the complete blocks found in ``text`` and one message per malformed block."""
    lines = text.replace("\r\n", "\n").split("\n")
    blocks: list[EditBlock] = []
    errors: list[str] = []
    last_path = ""
    number = 0  # blocks seen, complete or not
    boundary = 0  # the path of a block is searched for only after the previous block
    i = 0
    while i < len(lines):
        line = lines[i]
        if _REPLACE.match(line) or (_DIVIDER.match(line) and _looks_like_stray_divider(lines, i)):
            errors.append(f"line {i + 1}: {line.strip()!r} outside a SEARCH/REPLACE block")
            i += 1
            continue
        if not _SEARCH.match(line):
            i += 1
            continue
        number += 1
        path = _find_path(lines, boundary, i) or last_path
        body, dividers, end, problem = _read_block(lines, i)
        boundary = end
        i = end
        last_path = path
        where = f"block {number}" + (f" ({path})" if path else "")
        if problem:
            errors.append(f"{where}: {problem}; the block was not applied")
            continue
        if not path:
            errors.append(f"{where}: no file path before '<<<<<<< SEARCH'")
            continue
        splits = [(_join(body[:d]), _join(body[d + 1 :])) for d in dividers]
        blocks.append(EditBlock(path, *splits[0], tuple(splits) if len(splits) > 1 else ()))
    return blocks, errors


def _read_block(lines: list[str], start: int) -> tuple[list[str], list[int], int, str]:
    """Read from the SEARCH marker at ``start``: (body lines, indices of the divider-shaped
    lines in the body, index after the block, problem). A new SEARCH marker or the end of the
    text before REPLACE means truncation, unless the last of two or more divider-shaped lines
    stands where ``>>>>>>> REPLACE`` belongs (only blank, fence and path lines follow it before
    the next SEARCH marker or the end): models write that, and it is taken as the end marker."""
    body: list[str] = []
    dividers: list[int] = []
    i = start + 1
    while i < len(lines):
        line = lines[i]
        if _SEARCH.match(line):
            break
        if _REPLACE.match(line):
            if not dividers:
                return [], [], i + 1, "'>>>>>>> REPLACE' without a '=======' divider"
            return body, dividers, i + 1, ""
        if _DIVIDER.match(line):
            dividers.append(len(body))
        body.append(line)
        i += 1
    if len(dividers) >= 2 and _only_separators(body[dividers[-1] + 1 :]):
        last = dividers.pop()
        return body[:last], dividers, start + 1 + last + 1, ""
    if i < len(lines):
        return [], [], i, "truncated: a new '<<<<<<< SEARCH' before '>>>>>>> REPLACE'"
    missing = "'=======' and '>>>>>>> REPLACE'" if not dividers else "'>>>>>>> REPLACE'"
    return [], [], i, f"truncated: the text ends without {missing}"


def _only_separators(lines: list[str]) -> bool:
    """Blank and fence lines, and at most one path line (the next block's)."""
    paths = 0
    for line in lines:
        if not line.strip() or _FENCE.match(line):
            continue
        if not clean_path(line):
            return False
        paths += 1
    return paths <= 1


def _join(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def decline_reason(text: str) -> str | None:
    """The coder's reason when ``text`` declines the file with the ``NO CHANGES NEEDED`` line
    (the reply's other lines, stripped; may be ""); None when the reply does not decline."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    inside = False  # a block's own lines may hold the words (a file that contains them)
    found: dict[int, re.Match[str]] = {}
    for i, line in enumerate(lines):
        if _SEARCH.match(line):
            inside = True
        elif _REPLACE.match(line):
            inside = False
        elif not inside and (m := _DECLINE.match(line)):
            found[i] = m
    if not found:
        return None
    rest = [
        (found[i].group("reason") or "") if i in found else line for i, line in enumerate(lines)
    ]
    return "\n".join(rest).strip()


def _looks_like_stray_divider(lines: list[str], i: int) -> bool:
    """A ``=======`` line outside a block is only suspicious when a REPLACE marker follows it
    before any SEARCH marker; otherwise it is prose (a setext heading underline)."""
    for line in lines[i + 1 :]:
        if _SEARCH.match(line):
            return False
        if _REPLACE.match(line):
            return True
    return False


def _find_path(lines: list[str], boundary: int, marker: int) -> str:
    """The path line just above a SEARCH marker, skipping blank and fence lines; "" when the
    nearest such line is prose (the block then belongs to the previous block's file)."""
    seen = 0
    for i in range(marker - 1, boundary - 1, -1):
        line = lines[i]
        if not line.strip() or _FENCE.match(line):
            continue
        seen += 1
        candidate = clean_path(line)
        # A bare word ("Makefile") counts only right above the marker: further up it is prose.
        if candidate and (seen == 1 or "." in candidate or "/" in candidate):
            return candidate
        if seen >= _PATH_LOOKBACK:
            break
    return ""


def clean_path(line: str) -> str:
    """Strip markdown decoration from a path line; "" when it does not look like a path."""
    quoted = _QUOTED_PATH.match(line)
    if quoted and quoted.group(1).strip():
        return quoted.group(1).strip()
    text = line.strip().lstrip("#").strip()
    for _ in range(3):
        text = text.strip().rstrip(":").strip().strip("*`'\"").strip()
    if text.lower().startswith(("file:", "path:")):
        text = clean_path(text.split(":", 1)[1])
    if not text or any(ch.isspace() for ch in text) or "```" in text or len(text) > 400:
        return ""
    if text[0] in "<>=" or text.endswith((".", ",", ";")):
        return ""
    return text
