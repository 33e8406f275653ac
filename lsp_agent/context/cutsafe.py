"""Secrets that a cut separates from the text that identifies them.

The snapshot cuts files only at line boundaries (a cut never splits a key), but several parts
show a line without the lines above it: signature lines (numbered), diff lines (prefixed with
`+`, `-` or a space) and the first line of a selection. Two secret shapes in ``redact.py`` need
text before the value, which may sit on an earlier line: ``name =`` / ``name:`` (the value on the
next line, as in YAML) and ``Bearer``/``Basic``. Shown alone, such a value matches no shape, the
redactor leaves it as it is, and the model would see it. ``guard_line`` replaces those values
with a fixed marker, so the output is unchanged wherever no such secret is cut off.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsp_agent.redact import substitute

WITHHELD = "[secret withheld]"
# A line that may hold (the start of) a value whose name or scheme is above it: a `=`/`:` or
# at least 8 value characters first. Cheap, and most signature lines fail it.
_LEAD = re.compile(r"\s*(?:[:=]|\\?[\"']?[A-Za-z0-9._~+/=\-]{8})")
# How the last non-blank line above must end for the value to continue it: `=`/`:`, a scheme,
# or a secret name (the `=` then starts the value's line). A superset of redact.py's shapes.
_ENDS_OPEN = re.compile(
    r"(?:[:=]|bearer|basic|(?:api[_-]?key|secret|token|passw)\w*\\?[\"']?)\Z", re.IGNORECASE
)
# Words the context-dependent shapes need before a value (superset of redact.py's names).
_OPENER = re.compile(r"bearer|basic|api[_-]?key|secret|token|passw", re.IGNORECASE)
ABOVE_LINES = 3  # lines above the value searched for its name, from the last non-blank one


def _secrets(text: str) -> list[str]:
    found: list[str] = []

    def keep(secret: str) -> str:
        found.append(secret)
        return secret

    substitute(text, keep)
    return found


def may_hold_cut_secret(line: str) -> bool:
    """False for a line that ``guard_line`` always leaves as it is: the cheap first test, for
    callers that guard many lines (a kernel map's signatures number 35k)."""
    return _LEAD.match(line) is not None


def orphaned_secrets(lines: Sequence[str], number: int) -> list[str]:
    """Secret values on ``lines[number]`` that the redactor recognises with the lines above in
    view but not in the line alone (longest first)."""
    if number <= 0 or number >= len(lines):
        return []
    line = lines[number]
    if not may_hold_cut_secret(line):
        return []
    last = number - 1
    while last > 0 and not lines[last].strip():
        last -= 1
    if not _ENDS_OPEN.search(lines[last].rstrip()):
        return []
    above = "\n".join(lines[max(0, last - ABOVE_LINES + 1) : number])
    if not _OPENER.search(above):
        return []
    # No secret holds a newline, so what survives in ``alone`` is exactly what the redactor
    # would pass through when the line is shown on its own.
    alone = substitute(line, lambda _: "\n")
    leaked = {v for v in _secrets(above + "\n" + line) if v in alone}
    return sorted(leaked, key=lambda v: (-len(v), v))


def guard_line(shown: str, lines: Sequence[str], number: int) -> str:
    """``shown`` (a rendering of ``lines[number]``) with the values withheld that would reach
    the model unredacted because the lines above are not shown with it."""
    for value in orphaned_secrets(lines, number):
        shown = shown.replace(value, WITHHELD)
    return shown
