"""The orchestrator: researcher -> coders (in parallel) -> reviewer (bounded rounds) -> merge.

``run_task`` never writes anything but the transcript: it returns changes computed in memory
against the texts it read. Every failure becomes a ``TaskResult`` state with a clear error;
only cancellation propagates (``CancelledError``), after the transcript records it.
The task records (``TaskSpec``, ``FileChange``, ``TaskResult``, ``ProgressEvent``, ``DryRunPlan``)
live in ``records.py`` and are re-exported here: import them from either.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lsp_agent.agents import sizing
from lsp_agent.agents.coder import Coder, CoderResult
from lsp_agent.agents.fit import RequestSizer
from lsp_agent.agents.loop import Budget, LimitsExceeded, LoopDetected, ToolError
from lsp_agent.agents.merge import MergeConflict, MergedFile, merge, summary_for
from lsp_agent.agents.records import (
    DryRunPlan,
    FileChange,
    ProgressEvent,
    TaskResult,
    TaskSpec,
    task_text,
)
from lsp_agent.agents.roles import (
    Plan,
    Reviewer,
    RoleContext,
    Target,
    base_messages,
    prefix_message,
    render,
    research,
    task_message,
)
from lsp_agent.agents.tools import Workspace
from lsp_agent.agents.transcript import Transcript, environment_secrets
from lsp_agent.agents.usage import ModelError, Usage
from lsp_agent.agents.verification import (
    TaskVerification,
    resolve_checks,
    run_check_tool,
    summary_line,
)
from lsp_agent.config import Settings, workspace_cache_dir
from lsp_agent.edits import text_edits, unified_diff
from lsp_agent.redact import Redactor, scrub
from lsp_agent.tasks.model import new_task_id
from lsp_agent.tasks.titles import task_title

if TYPE_CHECKING:
    from lsp_agent.agents.client import ModelClient

__all__ = [
    "DryRunPlan",
    "FileChange",
    "ProgressEvent",
    "TaskResult",
    "TaskSpec",
    "new_task_id",
    "plan_task",
    "run_task",
    "task_text",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


Progress = Callable[[ProgressEvent], None]


def transcripts_dir(root: Path) -> Path:
    return workspace_cache_dir(root) / "transcripts"


async def run_task(
    spec: TaskSpec,
    *,
    index: Any,
    snapshot: Any,
    client: ModelClient,
    settings: Settings,
    progress: Progress | None = None,
    transcript_dir: Path | None = None,
    texts: Mapping[str, str] | None = None,
    task_id: str | None = None,
    environment: Path | None = None,
) -> TaskResult:
    """Run one task to a result. ``texts`` (frozen open buffers) take precedence over the index;
    ``transcript_dir`` defaults to the workspace cache's ``transcripts/``. ``environment`` is
    the workspace whose ``.venv`` verification uses when the index is over a goal run's
    worktree of it (default: the index's root)."""
    task_id = task_id or new_task_id()
    path = (transcript_dir or transcripts_dir(Path(index.root))) / f"{task_id}.jsonl"
    learn_window = getattr(client, "learn_window", None)
    if learn_window is not None:  # the window the server reports sizes every request
        await learn_window()
    provider = getattr(client, "provider", None)
    secrets = [*environment_secrets(), getattr(provider, "api_key", "") or ""]
    transcript = Transcript(path, secrets=secrets)
    redactor = Redactor(secrets)
    budget = Budget.for_settings(settings)
    sizer = request_sizer(settings, provider)
    workspace = Workspace(index, texts, redactor=redactor)
    for name in spec.files:  # the task's own files: a full copy of one is counted once
        text = workspace.read(name) if _safe_name(workspace, name) else None
        if text is not None:
            sizer.files[name] = text
    ctx = RoleContext(
        client=client,
        workspace=workspace,
        budget=budget,
        transcript=transcript,
        prefix=snapshot.prefix,
        tail=snapshot.tail,
        task=task_text(spec),
        redactor=redactor,
        files=tuple(spec.files),
        sizer=sizer,
        shown_in_full=dict(getattr(snapshot, "shown_in_full", None) or {}),
    )

    def emit(stage: str, message: str, done: int = 0, total: int = 0) -> None:
        transcript.event("progress", stage=stage, message=message, done=done, total=total)
        if progress is not None:
            try:
                progress(ProgressEvent(stage, message, done, total, budget.usage))
            except Exception:  # a broken listener must not fail the task
                log.exception("progress callback failed")

    transcript.event("task", id=task_id, spec=spec.to_json(), prefix_hash=snapshot.prefix_hash)
    title = task_title(instruction=spec.instruction, given=spec.title)
    verification: TaskVerification | None = None
    checks, check_notes = resolve_checks(Path(index.root), settings, environment=environment)
    try:
        async with asyncio.timeout(settings.budgets.max_seconds):
            if checks:  # the baseline runs while the researcher works
                verification = TaskVerification.start(
                    Path(index.root), settings, texts, checks, environment=environment
                )
                ctx.research_extra = [run_check_tool(verification, ctx.workspace)]
            # Redact the shared prefix once, off the loop (~100 ms for 4 MB the first time in
            # this process; a cache hit after): every agent's request then finds it cached.
            await asyncio.to_thread(redactor.redact, prefix_message(snapshot.prefix))
            learn_window = getattr(client, "learn_window", None)
            if learn_window is not None:  # asked once per client; sizing reads the result
                await learn_window()
            result = await _run(ctx, spec, title, emit, verification)
    except asyncio.CancelledError:
        # The journal keeps the last progress event's usage: send the real totals first.
        emit("cancelled", "cancelled", 1, 1)
        transcript.event("cancelled", usage=budget.usage.to_json())
        transcript.flush()
        raise
    except (LimitsExceeded, TimeoutError) as exc:
        message = (
            str(exc)
            if isinstance(exc, LimitsExceeded)
            else (f"time budget exhausted: {settings.budgets.max_seconds:g} s")
        )
        result = TaskResult("budget_exceeded", title, "", [], Usage(), message)
    except LoopDetected as exc:
        result = TaskResult("failed", title, "", [], Usage(), f"stopped early: {exc}")
    except ModelError as exc:
        result = TaskResult("failed", title, "", [], Usage(), f"model error ({exc.kind}): {exc}")
    except MergeConflict as exc:
        result = TaskResult("failed", title, "", [], Usage(), str(exc))
    except Exception as exc:  # never a dead server: report it as the task's failure
        log.exception("task %s failed", task_id)
        result = TaskResult("failed", title, "", [], Usage(), f"internal error: {exc!r}")
    finally:
        if verification is not None:
            await verification.close()
    result.usage = budget.usage
    result.transcript = path
    result.requests = [r.to_json() for r in sizer.records]
    manifest = getattr(snapshot, "manifest", None)
    result.snapshot = manifest.summary() if hasattr(manifest, "summary") else None
    if verification is not None and verification.state != "pending":
        result.verification = verification.record()
    elif result.state == "succeeded":
        result.verification = {"state": "skipped", "notes": check_notes, "commands": []}
    line = summary_line(result.verification)
    if line and result.state in ("succeeded", "unverified"):
        result.summary = f"{result.summary}\n\n{line}".strip()
    # The summary (plan notes) and errors (findings, apply hints quoting file lines) hold restored
    # model text and are shown, journaled and logged: scrub them like the transcript.
    result.summary = scrub(result.summary, secrets)
    result.error = scrub(result.error, secrets) if result.error else result.error
    transcript.event(
        "result",
        state=result.state,
        error=result.error,
        files=[c.path for c in result.changes],
        usage=budget.usage.to_json(),
    )
    transcript.flush()
    emit("done", result.error or result.state, 1, 1)
    transcript.flush()
    return result


async def _run(
    ctx: RoleContext,
    spec: TaskSpec,
    title: str,
    emit: Callable[..., None],
    verification: TaskVerification | None = None,
) -> TaskResult:
    emit("researching", "researching the workspace", 0, 1)
    plan = await research(ctx)
    ctx.transcript.event("plan", **plan.to_json())
    if not plan.targets:
        # The plan checker made sure the notes give a reason.
        return TaskResult("no_changes", title, f"no change needed: {plan.notes}", [], Usage())
    coders = [_coder(ctx, plan, target, n) for n, target in enumerate(plan.targets, 1)]
    await _code(coders, [None] * len(coders), emit)
    reviewer = Reviewer(ctx, plan)
    rounds = ctx.budget.settings.review_rounds
    for round_number in range(rounds + 1):
        merged = merge([c.result for c in coders])
        if not merged:
            return TaskResult("no_changes", title, _declined(coders), [], Usage())
        if verification is not None and not await _verify(
            ctx, spec, plan, coders, verification, emit
        ):
            merged = merge([c.result for c in coders])
            changes = [_file_change(item) for item in merged]
            summary = summary_for(plan, merged)
            return TaskResult("unverified", title, summary, changes, Usage(), verification.message)
        merged = merge([c.result for c in coders])
        emit("reviewing", f"reviewing (round {round_number + 1})", round_number, rounds + 1)
        verdict = await reviewer.review(_combined_diff(merged), {m.path: m.text for m in merged})
        ctx.transcript.event("review", round=round_number + 1, **verdict)
        if verdict["approved"]:
            break
        if round_number == rounds:
            findings = "; ".join(f"{f['path'] or '*'}: {f['message']}" for f in verdict["findings"])
            raise LimitsExceeded(
                "review_rounds",
                f"the reviewer still rejects the change after {rounds} revision rounds: "
                + findings,
            )
        revise, feedback = _route(ctx, plan, coders, verdict["findings"])
        await _code(revise, feedback, emit)
    emit("merging", "merging the edits", 0, 1)
    merged = merge([c.result for c in coders])
    changes = [_file_change(item) for item in merged]
    summary = summary_for(plan, merged)
    if plan.warnings:
        summary += "\n\nWarnings: " + "; ".join(plan.warnings)
    return TaskResult("succeeded", title, summary, changes, Usage())


def _declined(coders: Sequence[Coder]) -> str:
    """Why no file changed: every coder declined its file (NO CHANGES NEEDED) or its edits
    added up to nothing; their own words are the reason."""
    reasons = []
    for coder in coders:
        declined = coder.result.declined
        if declined is not None:
            reasons.append(f"{coder.path}: {declined or 'declined without a reason'}")
        else:
            reasons.append(f"{coder.path}: its edits left the file as it was")
    return "no change needed: " + "; ".join(reasons)


async def _verify(
    ctx: RoleContext,
    spec: TaskSpec,
    plan: Plan,
    coders: list[Coder],
    verification: TaskVerification,
    emit: Callable[..., None],
) -> bool:
    """The verifier stage (agents/verification.py); debugger findings revise like reviews."""

    async def revise(findings: list[dict[str, str]]) -> None:
        await _code(*_route(ctx, plan, coders, findings), emit)

    def files() -> dict[str, str | None]:
        return {item.path: item.text for item in merge([c.result for c in coders])}

    def diff() -> str:
        return _combined_diff(merge([c.result for c in coders]))

    return await verification.settle(spec, plan, ctx, files, diff, revise, emit)


async def learned_budget(settings: Settings, client: Any, *, kind: str) -> int:
    """The snapshot budget of a task of ``kind``, sized by the window the model's server
    reports: the window is learned first (``learn_window``: /v1/models or /props, once per
    client), then ``context.snapshot.budget_for`` applies the one sizing rule. The server and
    the batch command both size a task's snapshot here."""
    from lsp_agent.context.snapshot import budget_for

    learn_window = getattr(client, "learn_window", None)
    if learn_window is not None:
        await learn_window()
    provider = getattr(client, "provider", None)
    model_name = provider.model_for("coder") if provider is not None else None
    return budget_for(settings, model_name or None, kind=kind, provider=provider)


def request_sizer(settings: Settings, provider: Any = None) -> RequestSizer:
    """The task's request sizer: the model's window (configured, resolved by the provider, or
    its preset) and the tokenizer the provider counts with."""
    model_name = provider.model_for("coder") if provider is not None else None
    window = sizing.window_for(settings, model_name or None, provider)
    return RequestSizer(window, sizing.family_of(settings, model_name or None, provider))


def _safe_name(workspace: Workspace, name: str) -> bool:
    try:
        workspace.resolve(name)
    except ToolError:
        return False
    return True


def _coder(ctx: RoleContext, plan: Plan, target: Target, number: int) -> Coder:
    text = ctx.workspace.read(target.path)
    if text is not None and ctx.sizer is not None:
        ctx.sizer.files.setdefault(target.path, text)
    return Coder(ctx, plan, target, text or "", exists=text is not None, name=f"coder-{number}")


async def _code(
    coders: Sequence[Coder], feedback: Sequence[str | None], emit: Callable[..., None]
) -> list[CoderResult]:
    """Run coders in parallel; progress reports each finished file."""
    total, done = len(coders), 0
    emit("coding", f"coding {total} file{'s' if total != 1 else ''}", 0, total)

    async def one(coder: Coder, note: str | None) -> CoderResult:
        nonlocal done
        result = await coder.run(note)
        done += 1
        emit("coding", f"coding file {done} of {total}: {coder.path}", done, total)
        return result

    return await gather_all(one(c, f) for c, f in zip(coders, feedback, strict=True))


async def gather_all(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Like ``asyncio.gather`` but a failure cancels the siblings and is raised as itself."""
    tasks: list[asyncio.Task[T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_as_coroutine(a)) for a in awaitables]
    except BaseExceptionGroup as failures:
        leaves = _leaves(failures)
        first = next((e for e in leaves if not isinstance(e, asyncio.CancelledError)), leaves[0])
        raise first from None
    return [task.result() for task in tasks]


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def _route(
    ctx: RoleContext, plan: Plan, coders: list[Coder], findings: list[dict[str, str]]
) -> tuple[list[Coder], list[str | None]]:
    """Findings go to the coders of their file; a file nobody coded gets a new coder; a finding
    without a usable path goes to every coder."""
    by_coder: dict[int, list[str]] = {}
    for finding in findings:
        path = finding.get("path") or ""
        try:
            rel = ctx.workspace.resolve(path, must_exist=False) if path else ""
        except ToolError:
            rel = ""
        concerned = [i for i, c in enumerate(coders) if c.path == rel] if rel else []
        if rel and not concerned:
            target = Target(rel, finding["message"])
            coders.append(_coder(ctx, plan, target, len(coders) + 1))
            by_coder[len(coders) - 1] = []  # its instructions already hold the finding
            continue
        for i in concerned or range(len(coders)):
            by_coder.setdefault(i, []).append(f"- {finding['message']}")
    chosen = sorted(by_coder)
    notes: list[str | None] = [("\n".join(by_coder[i]) if by_coder[i] else None) for i in chosen]
    return [coders[i] for i in chosen], notes


def _combined_diff(files: Sequence[MergedFile]) -> str:
    return "".join(unified_diff(f.path, f.original, f.text) for f in files)


def _file_change(item: MergedFile) -> FileChange:
    return FileChange(
        path=item.path,
        original_sha256=hashlib.sha256(item.original.encode("utf-8")).hexdigest(),
        original_text=item.original,
        new_text=item.text,
        blocks=list(item.blocks),
        diff=unified_diff(item.path, item.original, item.text),
        edits=text_edits(item.original, item.text),
        created=not item.exists,
    )


def plan_task(
    spec: TaskSpec,
    *,
    index: Any,
    snapshot: Any,
    texts: Mapping[str, str] | None = None,
    count: Callable[[str], int] | None = None,
) -> DryRunPlan:
    """What a dry run shows, without calling a model: the files the task starts from and the
    prompt tokens of each role's first request, counted as the request sizer counts what is
    sent (``fit.RequestSizer``: every message with its template overhead, the tool schemas),
    the coder's message built by the coder's own function (a file the snapshot shows in full
    is a reference there, not a second copy). A lower bound: the plan, the researcher's tool
    results and the reviewer's diff are not known before the run. One coder per focus file
    is assumed; the researcher may choose others."""
    from lsp_agent.agents.coder import coder_message
    from lsp_agent.agents.tools import research_tools, submit_plan_tool, submit_review_tool

    if count is None:
        from lsp_agent.context.tokens import count_tokens as count
    sizer = RequestSizer(sizing.DEFAULT_WINDOW, counter=("cl100k", count))
    ws = Workspace(index, texts)
    task = task_text(spec)
    base = base_messages(snapshot.prefix)
    shown = dict(getattr(snapshot, "shown_in_full", None) or {})
    research = research_tools(ws)

    def tokens(text: str, tools: Sequence[Any] = ()) -> int:
        messages = [*base, {"role": "user", "content": text}]
        schemas = [t.schema() for t in tools]
        return sum(sizer.message_tokens(m) for m in messages) + sizer.tools_tokens(schemas)

    researcher = task_message(render("researcher"), task, snapshot.tail)
    prompts = {"researcher": tokens(researcher, [*research, submit_plan_tool(lambda a: a)])}
    for path in spec.files:
        target = Target(path, "")
        text = coder_message(
            task, snapshot.tail, Plan([target], ""), target, ws.read(path) or "", shown.get(path)
        )
        prompts[f"coder:{path}"] = tokens(text)
    reviewer = task_message(render("reviewer"), task, snapshot.tail)
    prompts["reviewer"] = tokens(reviewer, [*research, submit_review_tool()])
    return DryRunPlan(
        files=list(spec.files),
        prefix_tokens=count(snapshot.prefix),
        prompt_tokens=prompts,
        requests=2 + max(1, len(spec.files)),
    )
