"""The researcher's plan and the checks it must pass before any coder starts.

Every problem goes back to the researcher as a tool error it can act on (``ToolError``):

- one target per file: two targets naming the same file are merged (their instructions joined),
  so two coders never edit one file at once;
- a target that does not exist must say ``"new": true``, be named like a path (no shell
  variables, URLs or stray punctuation) and not end one slip away from the project's own
  suffixes, so a typo such as ``a.pyy`` is refused with the nearest real names instead of being
  created (a first ``.sh`` in a Python project is fine);
- files that steer lsp-agent or git (``.lsp-agent.toml``, anything under ``.git/``) are never
  targets;
- an empty plan ends the task as ``no_changes`` and needs notes that say why;
- when the plan leaves out a file the task itself names, the first such plan is sent back with a
  warning; submitting it again accepts it and the warning stays in the plan (and the summary).
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from lsp_agent.agents.loop import ToolError
from lsp_agent.agents.tools import Workspace

MAX_TARGETS = 32
# Files whose change would steer lsp-agent itself or git: never edited by a task.
STEERING_NAMES = frozenset({".lsp-agent.toml"})
STEERING_DIRS = frozenset({".git"})
# One path segment: letters, digits and the punctuation real file names use.
_SEGMENT = re.compile(r"^[\w@+\-][\w.@+\- ]*$|^\.[\w@+\-][\w.@+\- ]*$")
MIN_NOTE_WORDS = 3  # an empty plan's notes must be a reason, not "1" or "ok"
_WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class Target:
    path: str
    instructions: str
    new: bool = False  # the plan creates this file


@dataclass(frozen=True)
class Plan:
    targets: list[Target]
    notes: str
    warnings: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        rows = [
            f"- `{t.path}`{' (new file)' if t.new else ''}: {t.instructions}" for t in self.targets
        ] or ["- (no files)"]
        return "# Plan\n\nNotes: " + (self.notes or "(none)") + "\n\nTargets:\n" + "\n".join(rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "targets": [t.__dict__ for t in self.targets],
            "notes": self.notes,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        targets = [Target(**t) for t in data["targets"]]
        return cls(targets, data["notes"], list(data.get("warnings") or []))


class PlanChecker:
    """Validates one researcher's submissions; remembers the warnings already given."""

    def __init__(self, ws: Workspace, task_files: Sequence[str] = ()) -> None:
        self.ws = ws
        self.task_files = [f for f in task_files if f]
        self._warned: set[str] = set()

    def __call__(self, args: dict[str, Any]) -> Plan:
        return self.check(args)

    def check(self, args: dict[str, Any]) -> Plan:
        targets = args.get("targets")
        notes = args.get("notes", "")
        if not isinstance(targets, list):
            raise ToolError('targets must be a list of {"path": str, "instructions": str}')
        if not isinstance(notes, str):
            raise ToolError("notes must be a string")
        notes = notes.strip()
        if len(targets) > MAX_TARGETS:
            raise ToolError(f"at most {MAX_TARGETS} targets per task; split the work")
        merged: dict[str, Target] = {}
        for number, item in enumerate(targets, 1):
            target = self._target(number, item)
            prior = merged.get(target.path)
            if prior is None:
                merged[target.path] = target
            elif target.instructions not in prior.instructions:
                joined = f"{prior.instructions}\n\n{target.instructions}"
                merged[target.path] = Target(target.path, joined, prior.new)
        if not merged and len(_WORD.findall(notes)) < MIN_NOTE_WORDS:
            raise ToolError(
                "an empty targets list ends the task with no change, so notes must say why "
                "nothing needs to change (a sentence a user can check); otherwise list the "
                "files to change"
            )
        warnings = self._missing_task_files(list(merged))
        return Plan(list(merged.values()), notes, warnings)

    def _target(self, number: int, item: Any) -> Target:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise ToolError(f"target {number} needs a string path")
        raw = item["path"]
        instructions = item.get("instructions")
        if not isinstance(instructions, str) or not instructions.strip():
            raise ToolError(f"target {number} ({raw}) needs instructions")
        new = item.get("new", False)
        if not isinstance(new, bool):
            raise ToolError(f"target {number} ({raw}): new must be true or false")
        try:
            parts = self.ws.normalize(raw).split("/")
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        if any(part in STEERING_DIRS for part in parts) or parts[-1] in STEERING_NAMES:
            raise ToolError(
                f"{'/'.join(parts)} steers lsp-agent or git; a task never edits it (leave it "
                "out of the plan)"
            )
        # Outside the root, a secret, an ignored or unreadable file: the workspace says why.
        path = self.ws.resolve(raw, must_exist=False)
        if self.ws.read(path) is not None:
            return Target(path, instructions.strip(), False)
        return Target(path, instructions.strip(), self._new_file(number, raw, path, new))

    def _new_file(self, number: int, raw: str, path: str, new: bool) -> bool:
        near = self._nearest(path)
        hint = f"; did you mean {', '.join(near)}?" if near else " (see list_files)"
        if not new:
            raise ToolError(
                f"target {number}: {path} does not exist{hint} To create it, add "
                '"new": true to the target.'
            )
        if not all(_SEGMENT.match(part) for part in path.split("/")) or raw.strip() != raw:
            raise ToolError(
                f"target {number}: {raw!r} is not a file name (letters, digits and . _ - @ + "
                "in each part of a relative path)"
            )
        suffix = posixpath.splitext(path)[1]
        known = _suffixes(self.ws.paths())
        near_suffix = _near_miss(suffix, known) if suffix and suffix not in known else None
        if near_suffix:
            raise ToolError(
                f"target {number}: no file in this project ends in {suffix}, but many end in "
                f"{near_suffix}: {path} looks like a typo{hint} A new file must be named like "
                "the project's files."
            )
        return True

    def _nearest(self, path: str) -> list[str]:
        return difflib.get_close_matches(path, self.ws.paths(), n=3, cutoff=0.75)

    def _missing_task_files(self, planned: Collection[str]) -> list[str]:
        missing = [f for f in self.task_files if f not in planned]
        if not missing:
            return []
        warning = (
            "the plan leaves out "
            + ", ".join(missing)
            + ", which the task names: add a target for "
            + ("it" if len(missing) == 1 else "them")
            + ", or submit the same plan again to confirm they need no change"
        )
        key = ",".join(sorted(planned)) + "|" + ",".join(missing)
        if key not in self._warned:
            self._warned.add(key)
            raise ToolError(warning)
        return ["the plan leaves out the task's own " + ", ".join(missing)]


def _near_miss(suffix: str, known: Collection[str]) -> str | None:
    """A known suffix one typing slip away from ``suffix`` (``.pyy``/``.py``, ``.sj``/``.js``),
    so a new kind of file (a first ``.sh``) is still allowed."""
    for other in sorted(known):
        if not other.startswith(".") or other == suffix:
            continue
        a, b = suffix.lower(), other.lower()
        if a == b or (len(a) == len(b) + 1 and (a.startswith(b) or a[:-2] + a[-1] == b)):
            return other
        if len(a) == len(b) and sorted(a) == sorted(b):  # two letters swapped
            return other
        if len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1 and len(a) > 3:
            return other
    return None


def _suffixes(paths: Sequence[str]) -> set[str]:
    """Every suffix and every extensionless file name the project has."""
    known: set[str] = set()
    for path in paths:
        name = posixpath.basename(path)
        suffix = posixpath.splitext(name)[1]
        known.add(suffix or name)
    return known


def validate_plan(ws: Workspace, args: dict[str, Any], task_files: Sequence[str] = ()) -> Plan:
    """Check one submitted plan (no memory of earlier warnings: see ``PlanChecker``)."""
    return PlanChecker(ws, task_files).check(args)
