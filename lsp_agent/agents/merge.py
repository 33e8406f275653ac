"""The merge step: the coders' per-file results into one edit set, and a summary of it.

Deterministic code. Two coders that touched the same file (a plan may name a file twice) are
merged by re-applying the later coder's blocks, in order, on the earlier result; if that does
not apply cleanly a three-way rebase is tried; if neither works the task reports a conflict.
A change is never dropped silently.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from lsp_agent.agents.coder import CoderResult
from lsp_agent.agents.roles import Plan
from lsp_agent.edits import ApplyError, EditBlock, apply_blocks, rebase


class MergeConflict(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"conflicting edits to {path}: {message}")
        self.path = path


@dataclass
class MergedFile:
    path: str
    original: str
    text: str
    exists: bool
    blocks: list[EditBlock] = field(default_factory=list)


def merge(results: Sequence[CoderResult]) -> list[MergedFile]:
    """One entry per changed path, in plan order; raises ``MergeConflict``."""
    merged: dict[str, MergedFile] = {}
    for result in results:
        path = result.target.path
        current = merged.get(path)
        if current is None:
            merged[path] = MergedFile(
                path, result.original, result.text, result.exists, list(result.blocks)
            )
            continue
        if not result.changed:
            continue
        if not current.blocks:
            current.text, current.blocks = result.text, list(result.blocks)
            continue
        try:
            current.text = apply_blocks(current.text, result.blocks)
        except ApplyError as exc:
            rebased = rebase(result.original, result.text, current.text)
            if rebased is None:
                raise MergeConflict(path, getattr(exc, "message", "") or str(exc)) from None
            current.text = rebased
        current.blocks.extend(result.blocks)
    return [m for m in merged.values() if m.text != m.original]


def summary_for(plan: Plan, files: Sequence[MergedFile]) -> str:
    """A short, deterministic account: the plan's notes and per-file line counts."""
    lines = [plan.notes] if plan.notes else []
    for item in files:
        added, removed = _line_counts(item.original, item.text)
        verb = "create" if not item.exists else "edit"
        lines.append(f"- {verb} {item.path} (+{added} -{removed})")
    return "\n".join(lines)


def _line_counts(old: str, new: str) -> tuple[int, int]:
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed
