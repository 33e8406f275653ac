"""The task model and its client-facing shape.

``Task`` is one unit of work as the server and the batch command track it (state, progress,
usage, the result as JSON); ``task_summary`` is the shape clients see (``lspAgent/tasks``,
``lsp-agent tasks --json``), built from a Task or straight from journal columns.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple


class TaskState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    UNVERIFIED = "unverified"  # changes made, but the project's checks still fail: not applied
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUDGET_EXCEEDED = "budget_exceeded"
    NO_CHANGES = "no_changes"
    APPLIED = "applied"
    REJECTED = "rejected"

    @property
    def finished(self) -> bool:
        """The worker is done with it (whatever the outcome); only apply/reject may follow."""
        return self not in (TaskState.QUEUED, TaskState.RUNNING)


USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "requests",
    "attempts",
    "estimated_tokens",
)


def new_task_id() -> str:
    return f"t-{secrets.token_hex(6)}"


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, paths, tuples and mappings to plain JSON values.

    Results carry dataclasses from other modules (TaskResult, FileChange, Usage); converting
    generically keeps this module free of imports from the worker.
    """
    to_json = getattr(value, "to_json", None)
    if callable(to_json) and not isinstance(value, type):
        return to_jsonable(to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def usage_dict(usage: Any) -> dict[str, int]:
    """Normalise a Usage dataclass, a mapping or None to the four counters."""
    if usage is None:
        return {key: 0 for key in USAGE_KEYS}
    if not isinstance(usage, Mapping):
        usage = to_jsonable(usage)
    return {key: int(usage.get(key) or 0) for key in USAGE_KEYS}


@dataclass
class Task:
    id: str
    spec: dict[str, Any]  # the TaskSpec as JSON
    state: TaskState = TaskState.QUEUED
    title: str = ""
    progress: int = 0  # percent, for $/progress and the batch progress bar
    message: str = ""
    usage: dict[str, int] = field(default_factory=lambda: usage_dict(None))
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None  # the TaskResult as JSON (changes with new text)
    run_id: str = ""  # batch run this task belongs to; "" for tasks started by the server
    key: str = ""  # stable name of the task within its run (resume matches on it)

    @classmethod
    def new(cls, spec: Any, *, title: str = "", run_id: str = "", key: str = "") -> Task:
        spec_json = to_jsonable(spec)
        return cls(
            id=new_task_id(),
            spec=spec_json,
            title=title or str(spec_json.get("title") or ""),
            run_id=run_id,
            key=key,
        )

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def files(self) -> list[str]:
        """Files the task changed (from its result), else the files it was asked to work on."""
        if self.result and self.result.get("changes"):
            return [c["path"] for c in self.result["changes"]]
        return list(self.spec.get("files") or [])


def task_summary(task: Task) -> dict[str, Any]:
    """A task as clients see it: the ``lspAgent/tasks`` request and ``lsp-agent tasks --json``
    (camelCase, the LSP convention; ``createdAt`` in ISO 8601 UTC)."""
    return summary_from_columns(
        task.id, str(task.state), task.title, task.progress, task.message, task.usage,
        task.created_at, task.files, task.run_id,
    )  # fmt: skip


class ListedTask(NamedTuple):
    created_at: float  # epoch seconds: the summary's createdAt is rounded to the second
    summary: dict[str, Any]
    encoded: str  # the summary as JSON, encoded once: a listing's reply joins these

    @classmethod
    def of(cls, created_at: float, summary: dict[str, Any]) -> ListedTask:
        return cls(created_at, summary, json.dumps(summary))


def summary_from_columns(
    task_id: str,
    state: str,
    title: str,
    progress: int,
    message: str,
    usage: Mapping[str, int],
    created_at: float,
    files: list[str],
    run_id: str,
) -> dict[str, Any]:
    # The one client-facing shape, built from a Task or straight from journal columns.
    created = datetime.datetime.fromtimestamp(created_at, datetime.UTC)
    return {
        "id": task_id,
        "state": state,
        "title": title,
        "progress": progress,
        "message": message,
        "tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0),
        "cachedTokens": usage.get("cached_tokens", 0),
        "createdAt": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "files": files,
        "runId": run_id or None,
    }
