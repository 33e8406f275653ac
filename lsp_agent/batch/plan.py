"""From options and an index to the list of tasks a batch run will execute.

Planning is pure and deterministic (sorted paths, stable keys), so a resumed run plans the same
tasks and finds them in the journal by key; the run's fingerprint hashes what defines it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lsp_agent.batch.clusters import split_files, task_key
from lsp_agent.batch.diagnostics import Diagnostic, render_diagnostic
from lsp_agent.batch.errors import UsageError
from lsp_agent.batch.options import BatchOptions
from lsp_agent.tasks.titles import task_title

FIX_INSTRUCTION = (
    "Fix the listed diagnostics. Change only what the fixes need; keep behaviour and style."
)


@dataclass
class PlannedTask:
    key: str
    files: list[str]
    title: str
    instruction: str
    kind: str  # "refactor" | "fix" (TaskSpec.kind)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # fix tasks: of files[0]

    @property
    def rendered_diagnostics(self) -> list[str]:
        """Diagnostics as lines for the snapshot's tail."""
        return [render_diagnostic(self.files[0], d) for d in self.diagnostics]

    def spec_fields(self) -> dict[str, Any]:
        """Keyword arguments for the orchestrator's TaskSpec."""
        return {
            "instruction": self.instruction,
            "kind": self.kind,
            "files": list(self.files),
            "selection": None,
            "diagnostics": list(self.diagnostics),
            "preset": "fix" if self.kind == "fix" else None,
            "title": self.title,
        }


EMPTY_SNIFF_BYTES = 4096  # a whitespace-only file is empty too; larger ones are never


def without_empty(files: Sequence[str], index: Any) -> tuple[list[str], list[str]]:
    """(files with content, empty files): an empty ``__init__.py`` gets no task of its own."""
    kept: list[str] = []
    empty: list[str] = []
    for path in files:
        entry = index.get(path)
        size = getattr(entry, "size", 1)
        blank = size == 0 or (size <= EMPTY_SNIFF_BYTES and not (index.text(path) or "").strip())
        (empty if blank else kept).append(path)
    return kept, empty


def plan_refactor(
    options: BatchOptions, files: Sequence[str], entries: Mapping[str, Any]
) -> list[PlannedTask]:
    if not options.instruction.strip():
        raise UsageError("the instruction is empty: say what to change")
    groups = split_files(files, entries, mode=options.split, max_size=options.max_cluster)
    tasks = []
    for group in groups:
        tasks.append(
            PlannedTask(
                key=task_key(group),
                files=group,
                title=task_title(group, instruction=options.instruction),
                instruction=options.instruction,
                kind="refactor",
            )
        )
    return tasks


def plan_fix(
    options: BatchOptions,
    files: Sequence[str] | None,
    diagnostics: Mapping[str, list[Diagnostic]],
    entries: Mapping[str, Any],
) -> tuple[list[PlannedTask], list[str]]:
    """One task per file with diagnostics; ``files`` (if given) restricts which.

    Returns the tasks and warnings for diagnostics on files the index does not have.
    """
    warnings: list[str] = []
    wanted = set(files) if files is not None else None
    tasks = []
    for path, items in sorted(diagnostics.items()):
        if wanted is not None and path not in wanted:
            continue
        if path not in entries:
            warnings.append(f"{path}: has diagnostics but is not in the index; skipped")
            continue
        tasks.append(
            PlannedTask(
                key=path,
                files=[path],
                title=task_title([path], diagnostics=items),
                instruction=f"{FIX_INSTRUCTION} {options.instruction}".strip(),
                kind="fix",
                diagnostics=list(items),
            )
        )
    return tasks, warnings


def run_fingerprint(options: BatchOptions, tasks: Sequence[PlannedTask]) -> str:
    """What makes two runs "the same run" for --resume: the command, the instruction, the split
    and the selected files with their diagnostics — not the clusters, which --apply may change
    (a task's edit can add or drop references); tasks are then matched one by one by key."""
    files = sorted({path for task in tasks for path in task.files})
    payload = {
        "kind": options.kind,
        "instruction": options.instruction,
        "split": [options.split, options.max_cluster],
        "files": files,
        "diagnostics": [[t.key, t.diagnostics] for t in tasks if t.diagnostics],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
