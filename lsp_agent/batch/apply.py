"""Writing a task's changes to disk: atomically, and only over the content the task read.

Each file is written to a temporary file in the same directory (same filesystem, so the rename
is atomic), flushed, given the original's mode, then moved over the original with os.replace.
A reader therefore sees the old or the new file, never half of one; a killed process leaves at
worst a stray ``.<name>.*.tmp`` next to an intact original.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsp_agent.edits import safe_path

log = logging.getLogger(__name__)

APPLIED = "applied"
CHANGED_UNDERNEATH = "changed_underneath"
ERROR = "error"
SKIPPED = "skipped"


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any threads.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@dataclass(frozen=True)
class ApplyOutcome:
    path: str
    status: str  # applied | changed_underneath | error | skipped
    message: str = ""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(target: Path, data: bytes) -> None:
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        # mkstemp creates 0600; a new file gets what open() would have given it.
        mode = 0o666 & ~_UMASK
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _unchanged(current: bytes | None, change: Mapping[str, Any]) -> bool:
    """Does the file still hold what the task read? By hash, or by the recorded text."""
    original_text = change.get("original_text")
    if current is None:
        # A new file: only if the task read it as absent/empty.
        return not original_text
    expected = change.get("original_sha256")
    if expected and sha256_bytes(current) == expected:
        return True
    return original_text is not None and current == original_text.encode("utf-8")


def apply_changes(root: Path, changes: Sequence[Mapping[str, Any]]) -> list[ApplyOutcome]:
    """Apply one task's changes (FileChange as JSON: path, original_sha256, original_text,
    new_text), all or none.

    Every file is checked before any is written: a task's edits usually depend on each other
    (a renamed function and its callers), so when one file changed underneath, the task's other
    files are skipped too.
    """
    planned: list[tuple[str, Path, bytes, bytes | None]] = []
    problems: dict[str, ApplyOutcome] = {}
    for change in changes:
        path = str(change["path"])
        try:
            target = safe_path(root, path)
            try:
                current: bytes | None = target.read_bytes()
            except FileNotFoundError:
                current = None
        except (OSError, ValueError) as exc:
            problems[path] = ApplyOutcome(path, ERROR, str(exc))
            continue
        if not _unchanged(current, change):
            problems[path] = ApplyOutcome(
                path, CHANGED_UNDERNEATH, "changed underneath; left alone"
            )
            continue
        planned.append((path, target, str(change["new_text"]).encode("utf-8"), current))
    if problems:
        blocked = "not applied: another file of this task could not be applied"
        return [
            problems.get(str(c["path"])) or ApplyOutcome(str(c["path"]), SKIPPED, blocked)
            for c in changes
        ]
    outcomes: list[ApplyOutcome] = []
    for path, target, new_bytes, current in planned:
        try:
            if current != new_bytes:
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, new_bytes)
            outcomes.append(ApplyOutcome(path, APPLIED))
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)
            outcomes.append(ApplyOutcome(path, ERROR, str(exc)))
    return outcomes
