"""Failures read from a check's output, and trimmed to what a debugger needs.

A failure has a *key* that survives unrelated edits (a pytest node id; a lint message with its
path and code but without its line, since edits move lines) and a *detail*: for a test, the
assertion and the traceback frames in the files the task changed; for a lint error, its line.
Output no parser understands falls back to the exit status ("exit status 2").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_PYTEST_SUMMARY = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$")
_PYTEST_HEADER = re.compile(r"^_{3,} (?:ERROR collecting )?(.+?) _{3,}$")
_PYTEST_FRAME = re.compile(r"^(\S+?\.py):(\d+): ")
_RUFF = re.compile(r"^(.+?):(\d+):(\d+): ([A-Z]+[0-9]+) (.*)$")
_UNIX = re.compile(r"^(.+?):(\d+):(\d+): (.*)$")
MAX_DETAIL_LINES = 30
MAX_DETAIL_CHARS = 2_000


def failures(
    parser: str, output: str, exit_code: int | None, changed: Iterable[str] = ()
) -> dict[str, str]:
    """Failure key -> trimmed detail, from one run's output. A repeated lint key gets ``#2``."""
    found: dict[str, str] = {}
    if parser == "pytest":
        found = _pytest(output, set(changed))
    elif parser in ("ruff", "unix"):
        found = _lint(output, _RUFF if parser == "ruff" else _UNIX, parser == "ruff")
    if not found and exit_code not in (0, None):
        found[f"exit status {exit_code}"] = _tail(output)
    return found


def _pytest(output: str, changed: set[str]) -> dict[str, str]:
    lines = output.splitlines()
    sections = _sections(lines)
    found: dict[str, str] = {}
    for line in lines:
        match = _PYTEST_SUMMARY.match(line.strip())
        if not match:
            continue
        node, message = match.group(2), match.group(3) or ""
        section = sections.get(node.rsplit("::", 1)[-1]) or sections.get(node) or []
        detail = _trim_traceback(section, changed) or message
        found[node] = _cap(
            f"{match.group(1)} {node}"
            + (f" - {message}" if message else "")
            + ("\n" + detail if detail and detail != message else "")
        )
    return found


def _sections(lines: list[str]) -> dict[str, list[str]]:
    """pytest's per-test failure sections (``____ test_name ____`` up to the next header)."""
    out: dict[str, list[str]] = {}
    name: str | None = None
    for line in lines:
        header = _PYTEST_HEADER.match(line)
        if header:
            name = header.group(1)
            out[name] = []
        elif line.startswith("=" * 5):
            name = None
        elif name is not None:
            out[name].append(line)
    return out


def _trim_traceback(section: list[str], changed: set[str]) -> str:
    """``--tb=short`` frames: keep those in changed files and in test files, the assertion
    (``E`` lines) and the last frame; drop frames in library code."""
    kept: list[str] = []
    frame: list[str] = []
    frame_keep = False
    last_frame: list[str] = []

    def close() -> None:
        if frame and frame_keep:
            kept.extend(frame)

    for line in section:
        match = _PYTEST_FRAME.match(line)
        if match:
            close()
            path = match.group(1)
            frame, last_frame = [line], [line]
            frame_keep = path in changed or "test" in path.rsplit("/", 1)[-1]
        elif line.startswith("E "):
            close()
            frame, frame_keep = [], False
            kept.append(line)
        elif frame:
            frame.append(line)
            last_frame.append(line)
    close()
    if last_frame and last_frame[0] not in kept:
        kept[:0] = last_frame
    return "\n".join(kept)


def _lint(output: str, pattern: re.Pattern[str], coded: bool) -> dict[str, str]:
    found: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for line in output.splitlines():
        match = pattern.match(line.strip())
        if not match:
            continue
        path = match.group(1)
        text = match.group(5).removeprefix("[*] ") if coded else ""
        message = f"{match.group(4)} {text}" if coded else match.group(4)
        key = f"{path}: {message}"
        seen[key] += 1
        found[key if seen[key] == 1 else f"{key} #{seen[key]}"] = line.strip()
    return found


def _tail(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return _cap("\n".join(lines[-MAX_DETAIL_LINES:]))


def _cap(text: str) -> str:
    lines = text.splitlines()
    if len(lines) > MAX_DETAIL_LINES:
        lines = [*lines[: MAX_DETAIL_LINES - 1], f"... ({len(lines) - MAX_DETAIL_LINES + 1} more)"]
    text = "\n".join(lines)
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 3] + "..."
