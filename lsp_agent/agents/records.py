"""The task records the orchestrator takes and returns, JSON round-trippable for the journal.

``TaskSpec`` (what to do), ``FileChange`` and ``TaskResult`` (what came out), ``ProgressEvent``,
``DryRunPlan`` (``plan_task``'s answer), and ``task_text``: the task as every role reads it.
``lsp_agent.agents.orchestrator`` re-exports them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.agents.usage import Usage
from lsp_agent.edits import EditBlock, TextEdit


@dataclass
class TaskSpec:
    instruction: str
    kind: str = "instruction"  # "fix" | "refactor" | "instruction"
    files: list[str] = field(default_factory=list)  # focus files (POSIX, relative to the root)
    selection: Any = None  # context.Selection | None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)  # LSP Diagnostic-shaped
    preset: str | None = None
    title: str = ""
    # A goal run's ledger (goals/ledger.py): every role of every step reads it at the same place,
    # the end of the task, so step 14 sees its instructions laid out exactly as step 1 did.
    ledger: str = ""

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.selection is not None and dataclasses.is_dataclass(self.selection):
            data["selection"] = dataclasses.asdict(self.selection)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskSpec:
        selection = data.get("selection")
        if isinstance(selection, Mapping):
            try:
                from lsp_agent.context.model import Selection

                selection = Selection(**selection)
            except (ImportError, TypeError):
                selection = dict(selection)
        return cls(
            instruction=str(data.get("instruction", "")),
            kind=str(data.get("kind", "instruction")),
            files=list(data.get("files") or []),
            selection=selection,
            diagnostics=list(data.get("diagnostics") or []),
            preset=data.get("preset"),
            title=str(data.get("title", "")),
            ledger=str(data.get("ledger", "")),
        )


@dataclass
class FileChange:
    path: str
    original_sha256: str  # of original_text encoded as UTF-8 ("" text for a created file)
    original_text: str
    new_text: str
    blocks: list[EditBlock]
    diff: str
    edits: list[TextEdit]  # UTF-16 positions against original_text
    created: bool = False  # the file did not exist when the task read it

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileChange:
        return cls(
            path=data["path"],
            original_sha256=data["original_sha256"],
            original_text=data["original_text"],
            new_text=data["new_text"],
            blocks=[EditBlock(**b) for b in data.get("blocks") or []],
            diff=data.get("diff", ""),
            edits=[TextEdit(**e) for e in data.get("edits") or []],
            created=bool(data.get("created", False)),
        )


@dataclass
class TaskResult:
    # "succeeded" | "unverified" | "failed" | "cancelled" | "budget_exceeded" | "no_changes"
    state: str
    title: str
    summary: str
    changes: list[FileChange]
    usage: Usage
    error: str | None = None
    transcript: Path | None = None
    # agents/verification.py's record: commands, baseline and per-round counts, durations,
    # the trimmed output of what still fails; None when the task never got to verification
    verification: dict[str, Any] | None = None
    # One manifest per request sent (fit.RequestRecord.to_json): sections, tokens, duplicates.
    requests: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # The snapshot the task was given (context.model.Manifest.summary), journaled with it.
    snapshot: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "snapshot": self.snapshot,
            "state": self.state,
            "title": self.title,
            "summary": self.summary,
            "changes": [c.to_json() for c in self.changes],
            "usage": self.usage.to_json(),
            "error": self.error,
            "transcript": str(self.transcript) if self.transcript else None,
            "verification": self.verification,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskResult:
        usage = data.get("usage") or {}
        known = {f.name for f in dataclasses.fields(Usage)}
        return cls(
            state=data["state"],
            title=data.get("title", ""),
            summary=data.get("summary", ""),
            changes=[FileChange.from_json(c) for c in data.get("changes") or []],
            usage=Usage(**{k: int(v) for k, v in usage.items() if k in known}),
            error=data.get("error"),
            transcript=Path(data["transcript"]) if data.get("transcript") else None,
            verification=data.get("verification"),
            requests=list(data.get("requests") or []),
            snapshot=data.get("snapshot"),
        )


# The share of a task's progress bar each stage spans: (start, end) percent. Stages come back
# (review findings send coders round again), so consumers keep the percentage monotonic.
STAGE_SPANS = {
    "researching": (5, 20),
    "coding": (20, 65),
    "verifying": (65, 80),
    "reviewing": (80, 92),
    "merging": (92, 100),
    "done": (100, 100),
}


@dataclass(frozen=True)
class ProgressEvent:
    stage: str  # a key of STAGE_SPANS
    message: str
    done: int = 0
    total: int = 0
    usage: Usage | None = None  # the task's usage so far, so clients show tokens while it runs

    @property
    def percent(self) -> int:
        """Where this event puts the task's bar (the one formula for $/progress, the
        journal's ``progress`` and the batch bar)."""
        start, end = STAGE_SPANS.get(self.stage, (0, 0))
        if self.total > 0:
            return start + (end - start) * min(self.done, self.total) // self.total
        return start

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["usage"] = None if self.usage is None else self.usage.to_json()
        return data


@dataclass
class DryRunPlan:
    """What ``plan_task`` returns for ``--dry-run``: no model is called to build it."""

    files: list[str]  # the task's focus files ([] = the researcher decides)
    prefix_tokens: int
    prompt_tokens: dict[str, int]  # role -> tokens of its first request
    requests: int  # the fewest model calls the task makes (1 researcher + coders + 1 reviewer)

    @property
    def total_prompt_tokens(self) -> int:
        return sum(self.prompt_tokens.values())

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "total_prompt_tokens": self.total_prompt_tokens}


def task_text(spec: TaskSpec) -> str:
    """The task as every role reads it, after the ``# Role`` header."""
    lines = [f"Kind: {spec.kind}" + (f" (preset {spec.preset})" if spec.preset else "")]
    lines.append("Instruction: " + (spec.instruction.strip() or "(none)"))
    if spec.files:
        lines.append("Files: " + ", ".join(spec.files))
    sel = spec.selection
    if sel is not None:
        get = sel.get if isinstance(sel, Mapping) else lambda k: getattr(sel, k, None)
        lines.append(
            f"Selection: {get('path')} lines {int(get('start_line') or 0) + 1}-"
            f"{int(get('end_line') or 0) + 1}"
        )
    if spec.diagnostics:
        lines.append("Diagnostics:")
        lines.extend(f"- {_diagnostic(d)}" for d in spec.diagnostics)
    if spec.ledger.strip():
        lines.extend(["", spec.ledger.strip()])
    return "\n".join(lines)


def _diagnostic(diag: Mapping[str, Any]) -> str:
    start = (diag.get("range") or {}).get("start") or {}
    where = diag.get("path") or diag.get("file") or diag.get("uri") or ""
    line = start.get("line", diag.get("line"))
    if line is not None:
        where = f"{where}:{int(line) + 1}" if where else f"line {int(line) + 1}"
    code = diag.get("code")
    source = " ".join(str(x) for x in (diag.get("source"), code) if x)
    return f"{where}: {source + ': ' if source else ''}{diag.get('message', '')}".strip()
