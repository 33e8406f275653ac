"""A goal's plan: steps with dependencies and acceptance checks, validated as the planner
submits them, and the scheduling rule (which steps may run now, side by side)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_STEPS = 60
ACCEPTANCE_KINDS = ("command", "tests", "criterion")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class PlanError(ValueError):
    """A submitted plan the planner must correct; the message says what is wrong."""


@dataclass(frozen=True)
class Acceptance:
    kind: str  # "command" (a verify command), "tests" (a test selector), "criterion" (reviewer)
    value: str

    def to_text(self) -> str:
        label = {"command": "this command must pass", "tests": "these tests must pass"}
        return f"{label.get(self.kind, 'criterion')}: {self.value}"


@dataclass(frozen=True)
class Step:
    key: str  # stable within the run: the journal, the commit trailer and resume match on it
    title: str
    instructions: str
    files: tuple[str, ...] = ()  # files it expects to touch; () = unknown (never run alongside)
    depends_on: tuple[str, ...] = ()
    acceptance: Acceptance = field(default_factory=lambda: Acceptance("criterion", ""))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"], data["depends_on"] = list(self.files), list(self.depends_on)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        acceptance = data.get("acceptance") or {}
        return cls(
            key=str(data["key"]),
            title=str(data.get("title", "")),
            instructions=str(data.get("instructions", "")),
            files=tuple(data.get("files") or ()),
            depends_on=tuple(data.get("depends_on") or ()),
            acceptance=Acceptance(
                str(acceptance.get("kind", "criterion")), str(acceptance.get("value", ""))
            ),
        )

    def overlaps(self, other: Step) -> bool:
        """Could the two steps touch the same file? Unknown files overlap everything."""
        if not self.files or not other.files:
            return True
        return bool(set(self.files) & set(other.files))


def validate_steps(
    raw: Any,
    *,
    done: Iterable[str] = (),
    resolve: Callable[[str], str] = lambda p: p,
    accept: Callable[[Acceptance], object] | None = None,
) -> list[Step]:
    """Clean the planner's ``steps`` argument. ``done`` are keys of steps already finished
    (a revision may depend on them, never reuse them); ``resolve`` normalises a path inside
    the workspace and raises ``ValueError`` (or a ToolError) for one outside it; ``accept``
    raises ``ValueError`` for an acceptance check that cannot run here
    (``acceptance.resolve_acceptance``)."""
    if not isinstance(raw, list) or not raw:
        raise PlanError("steps must be a non-empty list of step objects")
    if len(raw) > MAX_STEPS:
        raise PlanError(f"at most {MAX_STEPS} steps per plan; group related work")
    finished = set(done)
    seen: list[str] = []
    steps: list[Step] = []
    for number, item in enumerate(raw, 1):
        if not isinstance(item, Mapping):
            raise PlanError(f"step {number} must be an object")
        key = item.get("key") or f"s{number}"
        if not isinstance(key, str) or not _KEY.match(key):
            raise PlanError(f"step {number}: key must be a short name like 's{number}'")
        if key in seen or key in finished:
            raise PlanError(f"step {number}: key {key!r} is already used; keys are unique")
        title, instructions = item.get("title"), item.get("instructions")
        if not isinstance(title, str) or not title.strip():
            raise PlanError(f"step {key} needs a title")
        if not isinstance(instructions, str) or not instructions.strip():
            raise PlanError(f"step {key} needs instructions")
        files = item.get("files") or []
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise PlanError(f"step {key}: files must be a list of paths")
        clean_files: list[str] = []
        for path in files:
            try:
                clean_files.append(resolve(path))
            except ValueError as exc:
                raise PlanError(f"step {key}: {exc}") from None
        depends = item.get("depends_on") or []
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            raise PlanError(f"step {key}: depends_on must be a list of step keys")
        for dep in depends:
            if dep not in seen and dep not in finished:
                raise PlanError(f"step {key} depends on {dep!r}, which is not an earlier step")
        acceptance = _acceptance(key, item.get("acceptance"))
        if accept is not None:
            try:
                accept(acceptance)
            except ValueError as exc:
                raise PlanError(f"step {key}: acceptance: {exc}") from None
        steps.append(
            Step(
                key=key,
                title=title.strip(),
                instructions=instructions.strip(),
                files=tuple(dict.fromkeys(clean_files)),
                depends_on=tuple(dict.fromkeys(depends)),
                acceptance=acceptance,
            )
        )
        seen.append(key)
    return steps


def _acceptance(key: str, raw: Any) -> Acceptance:
    if raw is None:
        return Acceptance("criterion", "")
    if isinstance(raw, str):
        return Acceptance("criterion", raw.strip())
    if not isinstance(raw, Mapping):
        raise PlanError(f'step {key}: acceptance must be {{"kind": ..., "value": ...}}')
    kind, value = raw.get("kind", "criterion"), raw.get("value", "")
    if kind not in ACCEPTANCE_KINDS or not isinstance(value, str):
        raise PlanError(
            f"step {key}: acceptance kind must be one of {', '.join(ACCEPTANCE_KINDS)} "
            "with a string value"
        )
    return Acceptance(kind, value.strip())


def ready_steps(
    pending: Sequence[Step], done: Iterable[str], running: Sequence[Step], slots: int
) -> list[Step]:
    """Pending steps that may start now, in plan order: their dependencies are done, they
    overlap no running step's files (nor each other's), and a slot is free."""
    finished = set(done)
    chosen: list[Step] = []
    busy = list(running)
    for step in pending:
        if len(chosen) >= slots:
            break
        if not set(step.depends_on) <= finished:
            continue
        if any(step.overlaps(other) for other in busy):
            continue
        chosen.append(step)
        busy.append(step)
    return chosen
