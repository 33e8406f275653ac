"""A batch run end to end: prepare (root, settings, index, plan), then run or dry-run.

The run is journaled in the workspace's tasks.sqlite under a run id, one row per planned task,
keyed by the task's files. With --apply, a task's changes are written as soon as it finishes
(atomically, hash-checked), so an interrupted run leaves every file either untouched or fully
changed, and --resume picks up the tasks that had not finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lsp_agent.batch.apply import APPLIED, SKIPPED, ApplyOutcome, apply_changes
from lsp_agent.batch.diagnostics import parse_diagnostics
from lsp_agent.batch.errors import UsageError
from lsp_agent.batch.options import MAX_JOBS, BatchOptions
from lsp_agent.batch.overlap import Overlap, RunFiles
from lsp_agent.batch.plan import (
    PlannedTask,
    plan_fix,
    plan_refactor,
    run_fingerprint,
    without_empty,
)
from lsp_agent.batch.progress import BatchProgress
from lsp_agent.batch.report import TaskOutcome, changes_of, diff_text, exit_code, report_json
from lsp_agent.batch.selection import select_files
from lsp_agent.config import ConfigError, Settings, load_settings, workspace_cache_dir
from lsp_agent.tasks.journal import TaskJournal
from lsp_agent.tasks.model import Task, TaskState
from lsp_agent.tasks.runner import TaskRunner
from lsp_agent.textfiles import NotText, decode_text, read_text
from lsp_agent.workspace_root import RootError, choose_root

# States a resumed run does not redo. Failed, cancelled and over-budget tasks run again.
DONE_STATES = frozenset(
    {TaskState.SUCCEEDED, TaskState.NO_CHANGES, TaskState.APPLIED, TaskState.REJECTED}
)


@dataclass
class Prepared:
    options: BatchOptions
    root: Path
    settings: Settings
    index: Any
    tasks: list[PlannedTask]
    jobs: int
    provider: Any = None  # ProviderConfig; None for a dry run
    warnings: list[str] = field(default_factory=list)
    root_reason: str = ""  # why this root (workspace_root.WorkspaceRoot.reason)


def prepare(options: BatchOptions, err: TextIO) -> Prepared:
    """Resolve the root, load settings, check the model configuration (unless dry-running:
    a ConfigError is raised before any indexing work), index the workspace, plan the tasks."""
    from lsp_agent.index import WorkspaceIndex
    from lsp_agent.index.discovery import TooManyFiles, sparse_ignore_warning

    try:
        chosen = choose_root(options.paths, options.cwd, options.root)
    except RootError as exc:
        raise UsageError(str(exc)) from None
    root = chosen.path
    # First line of the human-readable stream, before any slow work.
    print(f"lsp-agent: workspace root {chosen.describe()}", file=err)
    try:
        settings, warnings = load_settings(root, options.overrides, strict=True)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    provider = None
    if not options.dry_run:
        from lsp_agent.agents.providers import resolve_provider

        provider = resolve_provider(settings)
    index = WorkspaceIndex(root, settings.index)
    try:
        stats = index.build()
    except TooManyFiles as exc:
        raise UsageError(str(exc)) from None
    print(
        f"lsp-agent: indexed {stats.files} files in {stats.seconds:.1f} s "
        f"({stats.from_cache} from cache)",
        file=err,
    )
    # Said at once: a selection error that follows ("contains no indexed source file") is
    # only understandable with it.
    sparse = sparse_ignore_warning(root, index.ignore_rules, stats.files)
    if sparse is not None:
        print(f"lsp-agent: {sparse}", file=err)
    entries = index.entries()
    if options.kind == "fix":
        if options.diagnostics_file is None:
            raise UsageError("--diagnostics FILE is required (linter JSON, or - for stdin)")
        text = _read_diagnostics(options.diagnostics_file)
        grouped, diag_warnings = parse_diagnostics(text, root, cwd=options.cwd)
        warnings = warnings + diag_warnings
        files = (
            select_files(root, options.paths, entries, cwd=options.cwd) if options.paths else None
        )
        tasks, plan_warnings = plan_fix(options, files, grouped, entries)
        warnings += plan_warnings
    else:
        files = select_files(root, options.paths, entries, cwd=options.cwd)
        files, empty = without_empty(files, index)
        if empty:
            shown = ", ".join(empty[:3]) + (", …" if len(empty) > 3 else "")
            warnings.append(f"{len(empty)} empty file(s) get no task: {shown}")
        tasks = plan_refactor(options, files, entries)
    jobs = options.jobs or settings.jobs or 1
    if jobs > MAX_JOBS:
        warnings.append(f"jobs = {jobs} in the settings is over the bound; using {MAX_JOBS}")
        jobs = MAX_JOBS
    for warning in warnings:
        print(f"lsp-agent: {warning}", file=err)
    if sparse is not None:
        warnings.append(sparse)
    return Prepared(options, root, settings, index, tasks, jobs, provider, warnings, chosen.reason)


def _read_diagnostics(path: Path) -> str:
    """The linter output as text: UTF-8, or UTF-16 with a BOM (a PowerShell redirect)."""
    try:
        if str(path) == "-":
            raw = getattr(sys.stdin, "buffer", None)  # a text-only stream when embedded
            if raw is None:
                return sys.stdin.read()
            return decode_text(raw.read(), "--diagnostics - (stdin)")
        return read_text(path)
    except NotText as exc:
        raise UsageError(f"--diagnostics {exc}") from None
    except OSError as exc:
        raise UsageError(f"--diagnostics {path}: {exc.strerror or exc}") from None


async def execute(prep: Prepared, out: TextIO, err: TextIO) -> int:
    """Run the planned tasks with one shared model client; print the diff or JSON."""
    from lsp_agent.agents.client import OpenAIChatClient
    from lsp_agent.agents.orchestrator import transcripts_dir
    from lsp_agent.batch.taskflow import BatchTaskFlow

    options = prep.options
    provider = prep.provider
    started = time.monotonic()
    _cancel_on_sigterm()
    journal = TaskJournal(workspace_cache_dir(prep.root) / "tasks.sqlite")
    fingerprint = run_fingerprint(options, prep.tasks)
    previous: dict[str, Task] = {}
    run = journal.latest_run(fingerprint) if options.resume else None
    if options.resume and run is None:
        print("lsp-agent: no earlier run of this command to resume; starting afresh", file=err)
    if run is not None:
        previous = {t.key: t for t in journal.list(run_id=run.id)}
    else:
        run = journal.start_run(
            fingerprint, {"command": options.kind, "instruction": options.instruction}
        )
    client = OpenAIChatClient.from_settings(prep.settings, provider=provider)
    flow = BatchTaskFlow(
        prep.index,
        prep.settings,
        model_name=provider.model_for("coder") or None,
        kind=prep.options.kind,
        client=client,
    )
    try:
        files = RunFiles()  # what the run's applied tasks left in each file
        with BatchProgress(len(prep.tasks), stream=err) as progress:
            runner = TaskRunner(concurrency=prep.jobs, journal=journal, on_update=progress.update)

            async def drive(planned: PlannedTask) -> TaskOutcome:
                prior = previous.get(planned.key)
                if prior is not None and prior.state in DONE_STATES:
                    outcome = TaskOutcome(prior, resumed=True)
                    progress.skipped(prior)
                else:
                    task = Task.new(planned.spec_fields(), run_id=run.id, key=planned.key)
                    if prior is not None:  # the same row: the journal keeps one per task
                        task.id, task.created_at = prior.id, prior.created_at
                    finished = await runner.start(
                        task, lambda report: flow.run(planned, task.id, report)
                    )
                    outcome = TaskOutcome(finished)
                if options.apply and should_apply(outcome.task.state, options.apply_unverified):
                    # File I/O and re-indexing the written files: off the loop, so running
                    # tasks keep streaming.
                    await asyncio.to_thread(
                        _apply, prep.root, outcome, journal, flow, progress, files
                    )
                return outcome

            outcomes = await asyncio.gather(*(drive(p) for p in prep.tasks))
        journal.finish_run(run.id)
        retention = prep.settings.journal
        journal.prune(
            keep_tasks=retention.keep_tasks and max(retention.keep_tasks, len(prep.tasks)),
            keep_days=retention.keep_days,
            transcripts=transcripts_dir(prep.root),
        )
    finally:
        await client.aclose()
        journal.close()
    _emit(prep, list(outcomes), run.id, time.monotonic() - started, out, err)
    return exit_code(outcomes)


def should_apply(state: TaskState, apply_unverified: bool) -> bool:
    """A verified result applies with --apply; an unverified one only with --apply-unverified."""
    return state is TaskState.SUCCEEDED or (apply_unverified and state is TaskState.UNVERIFIED)


def _cancel_on_sigterm() -> None:
    """SIGTERM cancels the run like Ctrl-C does, so running tasks flush their transcripts and
    journal what they spent instead of dying with nothing recorded."""
    task = asyncio.current_task()
    if task is None:
        return
    # Not the main thread, or no signals (Windows): then SIGTERM keeps its default.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def _apply(
    root: Path,
    outcome: TaskOutcome,
    journal: TaskJournal,
    flow: Any,
    progress: BatchProgress,
    files: RunFiles,
) -> None:
    task = outcome.task
    changes = changes_of(task)
    with files.lock:  # settle, write and record as one step: tasks finish in several threads
        try:
            settled = files.settle(task.id, changes)
        except Overlap as exc:
            outcome.overlap = str(exc)
            outcome.apply = [ApplyOutcome(str(c["path"]), SKIPPED, str(exc)) for c in changes]
            settled = []
        if settled:
            outcome.apply = apply_changes(root, settled)
            if all(a.status == APPLIED for a in outcome.apply):
                files.record(task.id, settled)
    written = [a.path for a in outcome.apply if a.status == APPLIED]
    if written:
        replaced = {
            str(c["path"]): str(c.get("original_text") or "")
            for c in settled
            if str(c["path"]) in written and not c.get("created")
        }
        flow.refresh(written, replaced)
    if all(a.status == APPLIED for a in outcome.apply):
        task.state = TaskState.APPLIED
        task.message = f"applied to {len(written)} file(s)"
    else:
        task.message = "; ".join(f"{a.path}: {a.message or a.status}" for a in outcome.apply)
        progress.note(f"lsp-agent: {task.id} not applied: {task.message}")
    if task.result is not None:
        task.result["apply"] = [dataclasses.asdict(a) for a in outcome.apply]
    journal.record(task)


def _emit(
    prep: Prepared,
    outcomes: list[TaskOutcome],
    run_id: str,
    wall_s: float,
    out: TextIO,
    err: TextIO,
) -> None:
    options = prep.options
    # Settling the tasks' changes into one diff per file also marks overlapping tasks, which
    # the JSON report and the exit code must show too.
    diff = "" if options.apply else diff_text(outcomes)
    if options.output == "json":
        report = report_json(
            outcomes,
            run_id=run_id,
            root=str(prep.root),
            command=options.kind,
            instruction=options.instruction,
            wall_s=wall_s,
            warnings=prep.warnings,
        )
        out.write(json.dumps(report, indent=2) + "\n")
    elif options.output == "diff":
        out.write(diff)
    ok = sum(1 for o in outcomes if o.ok)
    tokens = sum(
        o.task.usage["prompt_tokens"] + o.task.usage["completion_tokens"] for o in outcomes
    )
    cached = sum(o.task.usage["cached_tokens"] for o in outcomes)
    estimated = sum(o.task.usage.get("estimated_tokens", 0) for o in outcomes)
    unchanged = sum(1 for o in outcomes if o.no_changes)
    print(
        f"lsp-agent: {ok}/{len(outcomes)} tasks ok"
        + (f", {unchanged} changed nothing" if unchanged else "")
        + f", {tokens:,} tokens ({cached:,} cached"
        + (f", {estimated:,} estimated: the server reported none" if estimated else "")
        + f"), {wall_s:.1f} s, run {run_id}",
        file=err,
    )
    for outcome in outcomes:
        if outcome.no_changes:
            print(
                f"lsp-agent: {outcome.task.id} {outcome.task.title}: no change: {outcome.reason}",
                file=err,
            )
        elif not outcome.ok:
            print(f"lsp-agent: {outcome.task.id} {outcome.task.title}: {outcome.error}", file=err)
