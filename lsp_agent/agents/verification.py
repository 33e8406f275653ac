"""The verifier stage of a task: after the coders, before the reviewer.

``TaskVerification.start`` decides which checks run (``[verify] commands``, else detected) and
starts the baseline in a thread while the researcher works. ``settle`` runs the checks on the
candidate files; new failures go to the debugger, whose findings are routed to the coders like
review findings, at most ``verify.rounds`` times. ``record()`` is kept on the task result.

States of the record: ``passed`` (no new failure), ``failed`` (new failures after the rounds:
the task ends ``unverified``), ``skipped`` (disabled, or no checks found), ``refused`` (no
sandbox: the message names the package; the task ends ``unverified``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsp_agent.agents.debugger import Debugger
from lsp_agent.agents.loop import ToolError
from lsp_agent.agents.records import TaskSpec
from lsp_agent.agents.roles import Plan, RoleContext
from lsp_agent.agents.tools import Tool, Workspace
from lsp_agent.config import Settings, workspace_cache_dir
from lsp_agent.verify.checks import Check, configured_checks, detect_checks
from lsp_agent.verify.sandbox import Limits, SandboxUnavailable, require_bwrap
from lsp_agent.verify.scratch import ScratchError
from lsp_agent.verify.verifier import Round, Verifier

log = logging.getLogger(__name__)
Emit = Callable[..., None]


def resolve_checks(
    root: Path, settings: Settings, *, environment: Path | None = None
) -> tuple[list[Check], list[str]]:
    """The checks a task on ``root`` runs, and notes (what was detected, skipped or refused).
    One decision for the worker, the dry run, ``lspAgent/context`` and goal steps (whose
    ``environment`` is the workspace: their worktree has no ``.venv``)."""
    if not settings.verify.enabled:
        return [], ["verification is disabled (verify.enabled = false)"]
    if settings.verify.commands:
        return configured_checks(settings.verify.commands)
    return detect_checks(root, environment=environment)


def verify_limits(settings: Settings) -> Limits:
    """The sandbox limits of every check a task or goal step runs."""
    return Limits(wall_seconds=settings.verify.timeout, output_bytes=settings.verify.max_output)


@dataclass
class TaskVerification:
    verifier: Verifier
    rounds: int
    notes: list[str] = field(default_factory=list)
    state: str = "pending"
    message: str = ""
    remaining: str = ""  # the trimmed failures of the last round, when they remain
    _baseline: asyncio.Task[Any] | None = None

    @classmethod
    def start(
        cls,
        root: Path,
        settings: Settings,
        texts: Mapping[str, str] | None,
        checks: list[Check],
        notes: Sequence[str] = (),
        *,
        scratch_parent: Path | None = None,
        environment: Path | None = None,
    ) -> TaskVerification:
        """Start the baseline of ``checks`` (from ``resolve_checks``) in a thread. With an
        ``environment`` (a goal step: ``root`` is a worktree of it) the checks see the tree at
        the environment's path, with its ``.venv`` bound read-only, as a task there would."""
        cache = workspace_cache_dir(environment or root) / "verify"
        verifier = Verifier(
            root,
            checks,
            limits=verify_limits(settings),
            sandbox=settings.verify.sandbox,
            texts=dict(texts or {}),
            scratch_parent=scratch_parent or cache / "scratch",
            cache_dir=cache,
            workspace=environment,
        )
        job = cls(verifier, settings.verify.rounds, list(notes))
        job._baseline = asyncio.create_task(job._prepare())
        return job

    async def _prepare(self) -> None:
        if self.verifier.sandbox != "none":
            require_bwrap()
        await asyncio.to_thread(self.verifier.baseline)

    async def settle(
        self,
        spec: TaskSpec,
        plan: Plan,
        ctx: RoleContext,
        files: Callable[[], Mapping[str, str | None]],
        diff: Callable[[], str],
        revise: Callable[[list[dict[str, str]]], Awaitable[None]],
        emit: Emit,
    ) -> bool:
        """Check the current candidate files; on new failures ask the debugger and let the coders
        revise, up to ``rounds`` times. True when nothing new fails."""
        try:
            assert self._baseline is not None
            emit("verifying", "verifying: baseline checks on the unmodified tree", 0, 1)
            await self._baseline
        except (SandboxUnavailable, ScratchError) as exc:
            self.state, self.message = "refused", str(exc)
            emit("verifying", f"verifying: refused: {exc}", 1, 1)
            return False
        debugger: Debugger | None = None
        for number in range(1, self.rounds + 2):
            emit(
                "verifying",
                f"verifying: running checks, round {number}",
                number - 1,
                self.rounds + 1,
            )
            result = await asyncio.to_thread(self.verifier.check, dict(files()))
            problems = result.failure_text()
            still = _unfixed_diagnostics(spec, self.verifier.checks, result)
            count = result.new_failures + len(still)
            text = self.remaining = "\n\n".join(p for p in [problems, *still] if p)
            if count == 0:
                self.state = "passed"
                emit("verifying", f"verifying: no new failures, round {number}", 1, 1)
                return True
            plural = "s" if count != 1 else ""
            emit(
                "verifying",
                f"verifying: {count} new failure{plural}, round {number}",
                number,
                self.rounds + 1,
            )
            if number > self.rounds:
                break
            debugger = debugger or Debugger(ctx, plan)
            findings = await debugger.diagnose(text, diff(), number)
            ctx.transcript.event("debug", round=number, findings=findings)
            await revise(findings)
        self.state = "failed"
        self.message = (
            f"the project's checks still fail after {self.rounds} revision round"
            f"{'s' if self.rounds != 1 else ''}"
        )
        return False

    def record(self) -> dict[str, Any]:
        data = self.verifier.record(self.state, self.message)
        data["notes"] = self.notes
        if self.state == "failed":
            data["remaining"] = self.remaining
        return data

    async def close(self) -> None:
        self.verifier.cancel.set()
        if self._baseline is not None and not self._baseline.done():
            self._baseline.cancel()
            with contextlib.suppress(BaseException):
                await self._baseline
        await asyncio.to_thread(self.verifier.close)


def summary_line(record: Mapping[str, Any] | None) -> str:
    """One line for the task summary and the change annotation."""
    if not record:
        return ""
    names = ", ".join(c["name"] for c in record.get("commands", []))
    rounds = record.get("rounds") or []
    before = sum(b["failures"] for b in record.get("baseline", []))
    pre = (
        f"; {before} pre-existing failure{'s' if before != 1 else ''} not blamed" if before else ""
    )
    if record["state"] == "passed":
        count = f"{len(rounds)} round{'s' if len(rounds) != 1 else ''}"
        return f"Verified by {names}: no new failures ({count}{pre})."
    if record["state"] == "failed":
        new = rounds[-1]["new_failures"] if rounds else 0
        return (
            f"Not verified: {names} still report {new} new failure{'s' if new != 1 else ''}{pre}."
        )
    if record["state"] == "refused":
        return f"Not verified: {record.get('message', '')}"
    return ""


def _unfixed_diagnostics(spec: TaskSpec, checks: Sequence[Check], result: Round) -> list[str]:
    """A fix task's diagnostic from a linter we run must be gone: still reported = a failure."""
    if spec.kind != "fix":
        return []
    out = []
    names = {c.name for c in checks if c.kind == "lint"}
    for diag in spec.diagnostics:
        source = str(diag.get("source") or "").lower()
        code = str(diag.get("code") or "")
        path = str(diag.get("path") or "")
        if source not in names or not code:
            continue
        comp = next(c for c in result.comparisons if c.name == source)
        keys = [*comp.preexisting, *comp.new]
        if any(k.startswith(f"{path}: {code} ") or (not path and f": {code} " in k) for k in keys):
            message = diag.get("message", "")
            out.append(
                f"## {source}: the diagnostic to fix is still reported: {path} {code} {message}"
            )
    return out


# A pytest node id or path: no options, no shell. "tests/test_x.py::TestY::test_z[param-1]"
_SELECTOR = re.compile(r"^[A-Za-z0-9_./-]+(::[A-Za-z0-9_.\[\]\-,=]+)*$")
RUN_CHECK_OUTPUT = 6_000


def check_selectors(check: Check, tests: Sequence[str], resolve: Callable[[str], Any]) -> None:
    """The one rule for test selectors a model passes to a check (the researcher's run_check,
    a goal step's acceptance check): node ids only — no options, no shell — on a check that
    takes them, each path inside the workspace (``resolve`` raises ``ToolError`` otherwise)."""
    if tests and not check.selectable:
        raise ToolError(f"{check.name} takes no test selectors; run it without 'tests'")
    for test in tests:
        if not _SELECTOR.match(test) or test.startswith("-"):
            raise ToolError(f"{test!r} is not a test id (path or path::name)")
        resolve(test.split("::", 1)[0])  # inside the workspace, not secret or ignored


def run_check_tool(verification: TaskVerification, ws: Workspace) -> Tool:
    """The researcher's sandboxed check runner: only configured or detected checks, arguments
    only test selectors (node ids inside the workspace), on the tree as the task read it."""
    checks = {c.name: c for c in verification.verifier.checks}

    def run(args: dict[str, Any]) -> str:
        name = args.get("check")
        if name not in checks:
            raise ToolError(f"check must be one of {sorted(checks)}")
        check = checks[name]
        tests = args.get("tests") or []
        if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
            raise ToolError("tests must be a list of test ids")
        check_selectors(check, tests, ws.resolve)
        if verification.verifier.sandbox != "none":
            try:
                require_bwrap()
            except SandboxUnavailable as exc:
                raise ToolError(str(exc)) from None
        result = verification.verifier.run(check, extra=tests)
        head = f"{name}: exit {result.exit_code}" + (
            f", stopped by {result.limit}" if result.limit else ""
        )
        body = "\n\n".join(f"{key}\n{detail}" for key, detail in result.failures.items())
        return ws.clip(
            f"{head}; {len(result.failures)} failing\n\n{body}".rstrip(), RUN_CHECK_OUTPUT
        )

    return Tool(
        "run_check",
        "Run one of the project's checks (or named tests) in a sandbox on the workspace as it is, "
        f"to reproduce a failure before planning. Checks: {', '.join(sorted(checks))}.",
        {
            "type": "object",
            "properties": {
                "check": {"type": "string", "enum": sorted(checks)},
                "tests": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["check"],
            "additionalProperties": False,
        },
        run,
    )
