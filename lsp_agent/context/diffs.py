"""Compact unified diffs of rendered blocks, for the tail's "changed since the prefix" part."""

from __future__ import annotations

from difflib import SequenceMatcher

from lsp_agent.context.cutsafe import guard_line
from lsp_agent.edits.text import common_affixes

CONTEXT = 1


def compact_diff(old: str, new: str, context: int = CONTEXT) -> str:
    """Hunks only (no ---/+++ lines: the caller names the file), ``context`` lines around each
    change, line numbers 1-based. Empty when the texts are equal.

    Common leading and trailing lines are trimmed first, so a one-line edit in a large file
    costs a few microseconds rather than a full sequence match."""
    if old == new:
        return ""
    a = old.splitlines()
    b = new.splitlines()
    head, tail = common_affixes(a, b)
    lo = max(0, head - context)
    a_win = a[lo : len(a) - max(0, tail - context)]
    b_win = b[lo : len(b) - max(0, tail - context)]
    out: list[str] = []
    matcher = SequenceMatcher(None, a_win, b_win, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        i1, i2 = group[0][1], group[-1][2]
        j1, j2 = group[0][3], group[-1][4]
        out.append(f"@@ -{_span(lo + i1, i2 - i1)} +{_span(lo + j1, j2 - j1)} @@")
        for tag, a1, a2, b1, b2 in group:
            # Each diff line stands alone (its +/- mark breaks a `name =` newline value), and
            # a hunk may start below a secret's name: such values are withheld (cutsafe.py).
            if tag == "equal":
                out.extend(" " + guard_line(a[n], a, n) for n in range(lo + a1, lo + a2))
                continue
            out.extend("-" + guard_line(a[n], a, n) for n in range(lo + a1, lo + a2))
            out.extend("+" + guard_line(b[n], b, n) for n in range(lo + b1, lo + b2))
    return "\n".join(out) + "\n" if out else ""


def _span(start: int, length: int) -> str:
    # Unified-diff convention: an empty range names the line before it.
    if length == 0:
        return f"{start},0"
    return f"{start + 1}" if length == 1 else f"{start + 1},{length}"
