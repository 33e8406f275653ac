"""What a batch run prints: the unified diff, the JSON report, the exit code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lsp_agent.batch.apply import APPLIED, ApplyOutcome
from lsp_agent.tasks.model import Task, TaskState

EXIT_OK = 0
EXIT_FAILED = 1
# No task failed, but some task changed nothing: not a success (a CI job must not go green on
# a run that did nothing). 2 is taken by usage and configuration errors.
EXIT_NO_CHANGES = 3

OK_STATES = frozenset({TaskState.SUCCEEDED, TaskState.APPLIED})


@dataclass
class TaskOutcome:
    """One planned task at the end of the run."""

    task: Task
    resumed: bool = False  # finished in an earlier run; not run again
    apply: list[ApplyOutcome] = field(default_factory=list)
    overlap: str | None = None  # its change of a file does not rebase onto an earlier task's

    @property
    def ok(self) -> bool:
        return (
            self.task.state in OK_STATES
            and self.overlap is None
            and all(a.status == APPLIED for a in self.apply)
        )

    @property
    def no_changes(self) -> bool:
        return self.task.state is TaskState.NO_CHANGES

    @property
    def reason(self) -> str | None:
        """Why a task changed nothing, in the researcher's or the coders' words."""
        if not self.no_changes:
            return None
        result = self.task.result or {}
        return str(result.get("summary") or self.task.message or "no reason given")

    @property
    def error(self) -> str | None:
        if self.overlap is not None:
            return f"not in the diff: {self.overlap}"
        if self.no_changes:
            return None
        if self.task.state not in OK_STATES:
            result = self.task.result or {}
            return str(result.get("error") or self.task.message or self.task.state)
        problems = [f"{a.path}: {a.message or a.status}" for a in self.apply if a.status != APPLIED]
        return "; ".join(problems) or None


def changes_of(task: Task) -> list[Mapping[str, Any]]:
    return list((task.result or {}).get("changes") or [])


def change_diff(change: Mapping[str, Any]) -> str:
    """The change's own diff when the worker made one, else computed from the texts."""
    if change.get("diff"):
        return str(change["diff"])
    from lsp_agent.edits import unified_diff

    return unified_diff(str(change["path"]), str(change["original_text"]), str(change["new_text"]))


def diff_text(outcomes: Sequence[TaskOutcome]) -> str:
    """One diff per changed file, from what the run read to what its tasks made of it, in
    plan order. A task whose change of a file does not rebase onto an earlier task's change of
    it is left out whole and marked (``overlap``): the diff always applies to the tree read."""
    from lsp_agent.batch.overlap import Overlap, RunFiles
    from lsp_agent.edits import unified_diff

    files = RunFiles()
    single: dict[str, str] = {}  # path -> the worker's own diff, while one task changed it
    for outcome in outcomes:
        if outcome.task.state not in OK_STATES:
            continue
        changes = changes_of(outcome.task)
        try:
            settled = files.settle(outcome.task.id, changes)
        except Overlap as exc:
            outcome.overlap = str(exc)
            continue
        for change in changes:
            path = str(change["path"])
            single[path] = change_diff(change) if path not in single else ""
        files.record(outcome.task.id, settled)
    parts = []
    for path, original, final in files.combined():
        text = single.get(path) or unified_diff(path, original, final)
        if text:
            parts.append(text if text.endswith("\n") else text + "\n")
    return "".join(parts)


def exit_code(outcomes: Sequence[TaskOutcome]) -> int:
    if any(not o.ok and not o.no_changes for o in outcomes):
        return EXIT_FAILED
    return EXIT_NO_CHANGES if any(o.no_changes for o in outcomes) else EXIT_OK


def task_json(outcome: TaskOutcome) -> dict[str, Any]:
    task = outcome.task
    usage = task.usage
    return {
        "id": task.id,
        "title": task.title,
        "files": list(task.spec.get("files") or []),
        "changed_files": [str(c["path"]) for c in changes_of(task)],
        "state": str(task.state),
        "ok": outcome.ok,
        "error": outcome.error,
        "reason": outcome.reason,
        "tokens": usage["prompt_tokens"] + usage["completion_tokens"],
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "cached_tokens": usage["cached_tokens"],
        "requests": usage["requests"],
        "attempts": usage.get("attempts", 0),
        "estimated_tokens": usage.get("estimated_tokens", 0),
        "duration_s": None if task.duration_s is None else round(task.duration_s, 3),
        "resumed": outcome.resumed,
        "verification": (task.result or {}).get("verification"),
        "apply": [
            {"path": a.path, "status": a.status, "message": a.message} for a in outcome.apply
        ],
    }


def report_json(
    outcomes: Sequence[TaskOutcome],
    *,
    run_id: str,
    root: str,
    command: str,
    instruction: str,
    wall_s: float,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    tasks = [task_json(o) for o in outcomes]
    states: dict[str, int] = {}
    for task in tasks:
        states[task["state"]] = states.get(task["state"], 0) + 1
    return {
        "run_id": run_id,
        "root": root,
        "command": command,
        "instruction": instruction,
        "tasks": tasks,
        "totals": {
            "tasks": len(tasks),
            "ok": sum(1 for t in tasks if t["ok"]),
            "failed": sum(1 for t in tasks if not t["ok"] and t["state"] != "no_changes"),
            "no_changes": sum(1 for t in tasks if t["state"] == "no_changes"),
            "states": dict(sorted(states.items())),
            "files_changed": sum(len(t["changed_files"]) for t in tasks if t["ok"]),
            "files_applied": sum(1 for t in tasks for a in t["apply"] if a["status"] == APPLIED),
            "changed_underneath": sorted(
                a["path"] for t in tasks for a in t["apply"] if a["status"] == "changed_underneath"
            ),
            "tokens": sum(t["tokens"] for t in tasks),
            "prompt_tokens": sum(t["prompt_tokens"] for t in tasks),
            "completion_tokens": sum(t["completion_tokens"] for t in tasks),
            "cached_tokens": sum(t["cached_tokens"] for t in tasks),
            "requests": sum(t["requests"] for t in tasks),
            "attempts": sum(t["attempts"] for t in tasks),
            "estimated_tokens": sum(t["estimated_tokens"] for t in tasks),
            "duration_s": round(wall_s, 3),
        },
        "warnings": list(warnings),
        "exit_code": exit_code(outcomes),
    }
