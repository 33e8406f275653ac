"""A task's title, one rule for the server, the batch command and the worker.

``<what>: <first file> (+N more)``, where *what* is the preset's name, or the instruction's first
line, or for a fix what it fixes (``Fix "<message>" in <file>`` for one diagnostic,
``Fix N diagnostics in <file>`` for several). A title the caller was given wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TITLE_CHARS = 72  # a line in a task list or a progress bar


def first_line(text: str, limit: int = TITLE_CHARS) -> str:
    """The first non-blank line, whitespace collapsed, cut to ``limit`` characters with …"""
    line = next((" ".join(s.split()) for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def task_title(
    files: Sequence[str] = (),
    *,
    instruction: str = "",
    preset_title: str = "",
    diagnostics: Sequence[Mapping[str, Any]] = (),
    given: str = "",
) -> str:
    if given.strip():
        return given.strip()
    where = ""
    if files:
        where = files[0] + (f" (+{len(files) - 1})" if len(files) > 1 else "")
    if diagnostics:
        if len(diagnostics) == 1:
            message = first_line(str(diagnostics[0].get("message") or ""), TITLE_CHARS // 2)
            what = f'Fix "{message}"' if message else "Fix 1 diagnostic"
        else:
            what = f"Fix {len(diagnostics)} diagnostics"
        return f"{what} in {where}" if where else what
    what = preset_title or first_line(instruction) or "change"
    return f"{what}: {where}" if where else what
