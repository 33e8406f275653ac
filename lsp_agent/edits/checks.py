"""Rules that refuse a reading of a SEARCH/REPLACE block wherever it would match.

Two ways a block that applies cleanly still writes what the model did not mean:

- **Lazy elision**: REPLACE stands for unchanged lines with a comment (``# ... existing code
  ...``, ``// ... rest unchanged``, ``<!-- ... -->``), which deletes the lines it stands for.
  Refused unless SEARCH holds the same comment (then it is the file's own line).
- **Marker-shaped lines**: a line shaped like the block markers (``=======`` at 5-9 ``=``,
  ``<<<<<<< x``, ``>>>>>>> x``) that REPLACE adds is written only when the file's own text shows
  that such a line belongs there: a ``<``/``>`` line the file already has, or a ``=`` line that
  underlines a text line (a setext heading) in a file that already underlines its headings so.
  A ``=`` line first or last in REPLACE, or under another marker, is never taken for a heading.

Each check returns a message the coder can act on, or "" when the reading passes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

_EQUALS = re.compile(r"^\s*={5,9}\s*$")
_ANGLE = re.compile(r"^\s*(?:<{5,9}|>{5,9})(?:\s.*)?$")
_SETEXT = re.compile(r"^\s*={3,}\s*$")
# A comment line: its delimiter, the text, and maybe a closing delimiter.
_COMMENT = re.compile(
    r"^\s*(?:#+|//+|/\*+|\*|<!--|--|;+|%+|\{/\*+|\(\*|')\s*(?P<body>.*?)\s*(?:\*+/\}?|-->|\*\))?\s*$"
)
_ONLY_DOTS = re.compile(r"^[\s.\u2026\[\]()]*(?:\.\.\.|\u2026)[\s.\u2026\[\]()]*$")
_ELLIPSIS = re.compile(r"\.\.\.|\u2026")
_ELISION_WORDS = re.compile(
    r"\b(?:existing|rest|unchanged|remain\w*|same|omitted|previous|original|other|keep|"
    r"as before|etc|continues)\b"
)
_ELISION_PHRASES = [
    re.compile(p)
    for p in (
        # "existing code" alone, or followed by what happens to it ("other methods unchanged")
        r"^(?:the |all )?(?:existing|previous|original|remaining|unchanged|other)\s+(?:code|lines|"
        r"methods|functions|implementation|content|logic|imports|tests|fields|properties|"
        r"members|config\w*|settings|entries|items|rules|sections|styles)"
        r"(?:\s+(?:unchanged|omitted|here|remain\w*|stay\w*|go here|as before|the same))?"
        r"[\s).\]:]*$",
        r"\brest of (?:the |this |your )?(?:file|code|function|class|method|module|"
        r"implementation|body|component|config\w*|document|page|script|test|list|styles|"
        r"rules|section|template|markup)\b",
        r"\b(?:unchanged|omitted(?: for brevity)?|same as (?:before|above)|as before|"
        r"stays the same|remains? the same)[\s).\]]*$",
        r"\bkeep(?:ing)? (?:the )?(?:existing|rest|remaining|original)\b",
    )
]
_MAX_PHRASE_WORDS = 8


def is_marker_shaped(line: str) -> bool:
    return bool(_EQUALS.match(line) or _ANGLE.match(line))


def elision_comment(line: str) -> bool:
    """True for a comment that stands for lines left out (``# ... existing code ...``)."""
    found = _COMMENT.match(line)
    if found is None:
        return False
    body = found.group("body").strip().lower()
    if not body:
        return False
    if _ONLY_DOTS.match(body):
        return True
    if _ELLIPSIS.search(body) and _ELISION_WORDS.search(body):
        return True
    if len(body.split()) > _MAX_PHRASE_WORDS:
        return False
    return any(p.search(body) for p in _ELISION_PHRASES)


def elision_problem(search: Sequence[str], replace: Sequence[str]) -> str:
    """Refuse a REPLACE that elides lines with a comment SEARCH does not have."""
    own = {s.strip() for s in search}
    for line in replace:
        if line.strip() not in own and elision_comment(line):
            return (
                f"REPLACE has the line {line.strip()!r}, which stands for lines left out; "
                "SEARCH does not have it, so applying the block would delete the lines it stands "
                "for. Spell out every line REPLACE keeps, or make SEARCH smaller so it holds only "
                "the lines you change"
            )
    return ""


def added_lines(search: Sequence[str], replace: Sequence[str]) -> list[int]:
    """Indices of REPLACE lines not kept from SEARCH (the lines the block writes new)."""
    matcher = difflib.SequenceMatcher(None, list(search), list(replace), autojunk=False)
    out: list[int] = []
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            out.extend(range(j1, j2))
    return out


def marker_problem(search: Sequence[str], replace: Sequence[str], contents: Sequence[str]) -> str:
    """Refuse marker-shaped lines that REPLACE adds unless the file shows they belong."""
    for j in added_lines(search, replace):
        line = replace[j]
        if _ANGLE.match(line):
            if line.strip() not in {c.strip() for c in contents}:
                return (
                    f"REPLACE would write the line {line.strip()!r}, shaped like an edit-block "
                    "marker, and the file has no such line; it was not applied. Mark the end of "
                    "each block with '>>>>>>> REPLACE' only"
                )
        elif _EQUALS.match(line) and not _underline_belongs(replace, j, contents):
            return (
                f"REPLACE would write the line {line.strip()!r} (REPLACE line {j + 1}), which has "
                "the shape of the '=======' divider, and nothing in the file shows it belongs "
                "there; it was not applied. End every block with '>>>>>>> REPLACE', never a "
                "second '======='. If it is a heading underline, make it 10 or more '=' long"
            )
    return ""


def _underline_belongs(replace: Sequence[str], j: int, contents: Sequence[str]) -> bool:
    if j == 0 or j == len(replace) - 1:
        return False
    above = replace[j - 1]
    if not above.strip() or is_marker_shaped(above):
        return False
    return _file_underlines_headings(contents)


def _file_underlines_headings(contents: Sequence[str]) -> bool:
    """The file has a '=' line under a text line, and no merge-conflict lines that would make
    its '=' lines conflict dividers instead."""
    if any(_ANGLE.match(c) for c in contents):
        return False
    return any(
        _SETEXT.match(c) and contents[k - 1].strip() and not is_marker_shaped(contents[k - 1])
        for k, c in enumerate(contents)
        if k > 0
    )
