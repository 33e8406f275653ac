"""A step's acceptance check, run: a project check (or test ids) that must pass on the step's
result before it is committed.

An acceptance of kind ``tests`` names test ids for the project's test runner (the check that
takes selectors: pytest); ``command`` names one of the project's checks (configured or
detected: ``agents.verification.resolve_checks``, the one decision), followed by test ids when
that check takes them. Nothing else runs: test ids follow the researcher's ``run_check`` rule
(``check_selectors``: no options, no shell, paths inside the workspace). A ``criterion`` is the
reviewer's to judge and runs nothing.

The check runs through ``verify.Verifier`` — the same scratch tree, sandbox and limits as a
task's verification — on the step's tree with the step's changes over it, seen at the
workspace's own path with its ``.venv`` bound read-only. It must pass outright (exit 0, no
limit hit): unlike the project's checks it is not compared with a baseline, since a step often
exists to make a failing test pass. A failure fails the step, and the planner revises the plan.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.agents.loop import ToolError
from lsp_agent.agents.verification import check_selectors, verify_limits
from lsp_agent.config import Settings
from lsp_agent.goals.plan import Acceptance
from lsp_agent.verify.checks import Check
from lsp_agent.verify.sandbox import SandboxUnavailable, require_bwrap
from lsp_agent.verify.scratch import ScratchError
from lsp_agent.verify.verifier import Verifier

RUNS = ("command", "tests")  # the acceptance kinds that execute something
MAX_ERROR_CHARS = 3_000


class AcceptanceError(ValueError):
    """An acceptance check that cannot run here; the message says how to write one that can."""


def resolve_acceptance(
    acceptance: Acceptance, checks: Sequence[Check], resolve: Callable[[str], Any]
) -> tuple[Check, list[str]] | None:
    """The check and test ids an acceptance runs (None for a criterion). ``resolve`` checks a
    test id's path is inside the workspace (raising ``ToolError`` or ``ValueError``)."""
    if acceptance.kind not in RUNS:
        return None
    words = acceptance.value.replace(",", " ").split()
    names = ", ".join(c.name for c in checks) or "none"
    if not checks:
        raise AcceptanceError(
            f"this project has no checks that can run (checks: {names}); use a criterion"
        )
    if acceptance.kind == "tests":
        runner = next((c for c in checks if c.selectable), None)
        if runner is None:
            raise AcceptanceError(
                f"no check here takes test ids (checks: {names}); name a check as a command"
            )
        if not words:
            raise AcceptanceError("a tests acceptance needs test ids (path or path::name)")
        check, tests = runner, words
    else:
        found = _named_check(acceptance.value, words, checks)
        if found is None:
            raise AcceptanceError(
                f"{acceptance.value!r} is not one of the project's checks ({names}): name one, "
                "followed by test ids when it takes them"
            )
        check, tests = found
    try:
        check_selectors(check, tests, resolve)
    except (ToolError, ValueError) as exc:
        raise AcceptanceError(str(exc)) from None
    return check, tests


def _named_check(
    value: str, words: list[str], checks: Sequence[Check]
) -> tuple[Check, list[str]] | None:
    """The check a command names: by its name (``pytest``, ``go test``) or its full command
    line, with the words after it as test ids. The longest name wins."""
    for check in sorted(checks, key=lambda c: -len(c.name.split())):
        if value.strip() == shlex.join(check.argv):
            return check, []
        name = check.name.split()
        if words[: len(name)] == name:
            return check, words[len(name) :]
    return None


def planner_note(checks: Sequence[Check], notes: Sequence[str] = ()) -> str:
    """What the planner is told about the acceptance checks it may ask for."""
    if not checks:
        why = "; ".join(notes) or "none were found"
        return (
            "# Acceptance checks\n\nThis project has no checks that can run here "
            f"({why}): every step's acceptance is a criterion for the reviewer."
        )
    lines = ["# Acceptance checks", "", "The project's checks (they run in a sandbox):"]
    for check in checks:
        takes = " (takes test ids: path or path::name)" if check.selectable else ""
        lines.append(f"- {check.name}{takes}: {shlex.join(check.argv)}")
    lines += [
        "",
        'An acceptance of kind "tests" lists test ids for the test runner; "command" names one '
        "of these checks by name, followed by test ids when it takes them. It must pass on the "
        "step's result, or the step fails. Anything else is a criterion.",
    ]
    return "\n".join(lines)


@dataclass
class AcceptanceOutcome:
    passed: bool
    record: dict[str, Any]  # for the ledger's verification of the step
    error: str = ""  # why the step failed ("" when it passed)


@dataclass
class AcceptanceRun:
    """One acceptance check on a step's result. ``run()`` blocks (call it in a thread);
    ``cancel`` stops the sandboxed command."""

    acceptance: Acceptance
    root: Path  # the step's tree (a worktree of the workspace)
    workspace: Path  # the folder the checks see it at, whose .venv they use
    files: Mapping[str, str]  # the step's changes: path -> new text
    settings: Settings
    checks: Sequence[Check]
    scratch_parent: Path
    cancel: threading.Event = field(default_factory=threading.Event)

    def run(self) -> AcceptanceOutcome:
        described = self.acceptance.to_text()
        try:
            found = resolve_acceptance(self.acceptance, self.checks, self._inside)
        except AcceptanceError as exc:
            return self._failed({"acceptance": described}, f"it cannot run: {exc}")
        if found is None:
            return AcceptanceOutcome(True, {"acceptance": described, "ran": False})
        check, tests = found
        command = shlex.join([*check.argv, *tests])
        record: dict[str, Any] = {"acceptance": described, "ran": True, "command": command}
        sandbox = self.settings.verify.sandbox
        verifier = Verifier(
            self.root,
            [check],
            limits=verify_limits(self.settings),
            sandbox=sandbox,
            texts=dict(self.files),
            scratch_parent=self.scratch_parent,
            workspace=self.workspace,
            cancel=self.cancel,
        )
        try:
            if sandbox != "none":
                require_bwrap()
            result = verifier.run(check, extra=tests, changed=sorted(self.files))
        except (SandboxUnavailable, ScratchError) as exc:
            return self._failed(record, f"it could not run: {exc}")
        finally:
            verifier.close()
        record |= {
            "exit_code": result.exit_code,
            "limit": result.limit,
            "duration_s": round(result.duration_s, 3),
            "failures": result.failures,
        }
        if result.exit_code == 0 and result.limit is None:
            return AcceptanceOutcome(True, record | {"passed": True})
        how = f"stopped by the {result.limit} limit" if result.limit else f"exit {result.exit_code}"
        details = "\n\n".join(f"{key}\n{text}".strip() for key, text in result.failures.items())
        return self._failed(record, f"{command}: {how}\n{details}".strip())

    def _failed(self, record: dict[str, Any], why: str) -> AcceptanceOutcome:
        text = f"acceptance check failed ({self.acceptance.to_text()}): {why}"
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS - 3] + "..."
        return AcceptanceOutcome(False, record | {"passed": False}, text)

    def _inside(self, path: str) -> str:
        from lsp_agent.edits import safe_path

        safe_path(self.root, path)  # ValueError outside the tree
        return path
