"""One task from ``lspAgent.runTask`` to its result: freeze, snapshot, run, progress, apply.

The command handler returns as soon as the task is queued; everything here runs in the
background through the session's TaskRunner. The task reads a frozen copy of the open buffers
and a snapshot built off the loop, so nothing the user types later changes what it sees.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from lsprotocol import types

from lsp_agent.handlers.apply_edit import apply_result
from lsp_agent.handlers.presets import PRESETS
from lsp_agent.handlers.session import FrozenDocuments, Root, Session
from lsp_agent.handlers.work_progress import WorkProgress
from lsp_agent.tasks.model import Task, TaskState
from lsp_agent.tasks.titles import task_title

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunTaskArgs:
    """The validated ``lspAgent.runTask`` argument object."""

    root: Root  # the workspace folder containing uri; the task runs and edits there only
    uri: str
    path: str
    version: int | None
    range: types.Range | None
    diagnostics: list[dict[str, Any]]
    preset: str | None
    instruction: str | None


def progress_message(stage: str, message: str, done: int, total: int) -> str:
    """What the progress bar says for a worker event (its percentage is the task's own,
    ``Task.progress``, kept by the runner)."""
    if stage == "coding" and total > 0:
        if done >= total:
            return f"coded {total} of {total} files"
        return f"coding file {min(done + 1, total)} of {total}"
    if stage == "done":
        return "done"
    if not message or message == stage:
        return stage
    # "reviewing (round 1)" already says the stage: never "reviewing: reviewing (round 1)".
    return message if message.startswith(stage) else f"{stage}: {message}"


def python_column(lines: list[str], line: int, utf16: int) -> int:
    """LSP columns count UTF-16 units; Selection counts Python characters."""
    if not 0 <= line < len(lines):
        return utf16
    units = 0
    for index, char in enumerate(lines[line]):
        if units >= utf16:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(lines[line])


def _lines_of(root: Root, frozen: FrozenDocuments, path: str) -> list[str]:
    text = frozen.texts.get(path)
    if text is None:
        try:
            text = (root.path / path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
    return text.splitlines()


class StaleRequest(Exception):
    """The request's range was computed against a version of the document that can no longer
    be mapped onto the current one (the user edited those lines meanwhile)."""


def current_range(request: RunTaskArgs) -> types.Range | None:
    """The request's range on the document as it is now. The client computed it against
    ``request.version``; the user may have typed since (while an instruction prompt was open).
    Lines moved by edits elsewhere are moved with them; edited lines raise StaleRequest."""
    rng = request.range
    doc = request.root.documents.get(request.path)
    if rng is None or request.version is None or doc is None or doc.version == request.version:
        return rng
    from lsp_agent.edits import map_lines

    old = doc.text_at(request.version)
    if old is None:
        raise StaleRequest(
            f"{request.path} is at version {doc.version}, the action was offered for version "
            f"{request.version}: ask for the code action again"
        )
    mapped = map_lines(old, doc.text, rng.start.line, rng.end.line)
    if mapped is None:
        raise StaleRequest(
            f"the selected lines of {request.path} changed after the action was offered: "
            "select them again"
        )
    start, end = mapped
    return types.Range(
        start=types.Position(line=start, character=rng.start.character),
        end=types.Position(line=end, character=rng.end.character),
    )


def start_task(session: Session, request: RunTaskArgs) -> tuple[Task, asyncio.Task[Any]]:
    """Queue the task; returns it and the handle that finishes after the edit was applied.

    Raises ConfigError (no model configured) or StaleRequest before anything is queued.
    """
    root = request.root
    assert root.runner is not None, "the server is not initialized"
    # First: no model configured → nothing else happens. Released when the task is done.
    client = session.model_clients.acquire(session.settings)

    from lsp_agent.agents.orchestrator import TaskSpec
    from lsp_agent.context.model import Selection

    preset = PRESETS.get(request.preset or "")
    instruction = request.instruction or (preset.instruction if preset else "")
    frozen = root.freeze()
    selection = None
    r = current_range(request)
    if r is not None:
        lines = _lines_of(root, frozen, request.path)
        selection = Selection(
            request.path,
            r.start.line,
            python_column(lines, r.start.line, r.start.character),
            r.end.line,
            python_column(lines, r.end.line, r.end.character),
        )
    spec = TaskSpec(
        instruction=instruction,
        kind=preset.kind if preset and not request.instruction else "instruction",
        files=[request.path],
        selection=selection,
        diagnostics=request.diagnostics,
        preset=request.preset,
        title=task_title(
            [request.path],
            instruction=instruction,
            preset_title=PRESETS[request.preset].title if request.preset in PRESETS else "",
            diagnostics=request.diagnostics if request.preset == "fix" else (),
        ),
    )
    journal_spec = {
        **spec.to_json(),
        "uri": request.uri,
        "versions": dict(frozen.versions),  # what the task read, for the record
    }
    task = Task.new(journal_spec, title=spec.title)
    handle = root.runner.start(
        task, lambda report: _work(session, root, task, spec, client, frozen, report)
    )
    finish = session.spawn(_finish(session, root, task, handle, client), f"finish {task.id}")
    return task, finish


async def _work(
    session: Session,
    root: Root,
    task: Task,
    spec: Any,
    client: Any,
    frozen: FrozenDocuments,
    report: Any,
) -> Any:
    from lsp_agent.agents.orchestrator import learned_budget, run_task

    assert root.runner is not None
    runner = root.runner
    progress = WorkProgress(
        session,
        f"lsp-agent/{task.id}",
        task.title,
        cancellable=True,
        on_cancel=lambda: runner.cancel(task.id),
    )
    await progress.begin("starting")
    try:
        if not root.index_ready.is_set():
            progress.report("waiting for the workspace index", 1)
            await root.index_ready.wait()
        if root.index is None or root.builder is None:
            raise RuntimeError(root.index_error or "the workspace index is not available")
        assert session.worker is not None
        # Learn the model's window before sizing the snapshot by it (a local server reports a
        # smaller one than the preset); the client lives on the worker loop.
        budget = await session.worker.run(learned_budget(session.settings, client, kind=spec.kind))
        progress.report("building the context snapshot", 2)
        view, snapshot, session.manifests[task.id] = await _snapshot(root, spec, budget, frozen)

        def on_event(event: Any) -> None:
            report(event)  # the runner updates task.progress: one percentage for both
            progress.report(
                progress_message(event.stage, event.message, event.done, event.total),
                task.progress,
            )

        # The worker runs on its own loop (see worker_loop.py); its progress events hop back.
        result = await session.worker.run(
            run_task(
                spec,
                index=view,
                snapshot=snapshot,
                client=client,
                settings=session.settings,
                progress=session.worker.call_back(asyncio.get_running_loop(), on_event),
                transcript_dir=root.cache_dir / "transcripts",
                texts=dict(frozen.texts),
                task_id=task.id,
            )
        )
    except asyncio.CancelledError:
        progress.end("cancelled: nothing was applied")
        raise
    except Exception as exc:
        progress.end(f"failed: {exc}")
        raise
    progress.end(result.error or result.summary or result.state)
    return result


async def _snapshot(
    root: Root, spec: Any, budget: int, frozen: FrozenDocuments
) -> tuple[Any, Any, dict[str, Any]]:
    """The task's view (the index with the buffers frozen at its start pinned over it), the
    snapshot built from that view, and its manifest as JSON, all computed off the loop (a
    changed buffer is parsed; the manifest of a 2,000-file workspace takes tens of
    milliseconds to convert). The task's tools read the same view."""
    from lsp_agent.context.view import TaskView

    builder = root.builder
    index = root.index
    assert builder is not None and index is not None
    diagnostics = [str(d.get("message", "")) for d in spec.diagnostics]

    def build() -> tuple[Any, Any, dict[str, Any]]:
        view = TaskView(index, frozen.texts)
        snapshot = builder.build(
            budget=budget,
            focus=spec.files,
            instruction=spec.instruction,
            selection=spec.selection,
            diagnostics=diagnostics,
            view=view,
        )
        return view, snapshot, snapshot.manifest.to_json()

    # One build at a time: the builder persists its prefix and is not meant to race itself.
    async with root.snapshot_lock:
        return await asyncio.get_running_loop().run_in_executor(None, build)


async def _finish(
    session: Session, root: Root, task: Task, handle: asyncio.Task[Task], client: Any
) -> dict[str, Any]:
    """Wait for the worker, then apply a successful result. Returns the outcome for clients
    that wait on the command (no applyEdit support)."""
    try:
        return await _settle(session, root, task, handle)
    finally:
        await release_client(session, client)


async def release_client(session: Session, client: Any) -> None:
    """A task or goal run is done with ``client``: close it if it was replaced meanwhile."""
    retired = session.model_clients.release(client)
    if retired is not None and session.worker is not None:
        # The SDK's pool lives on the worker loop; close it there.
        try:
            await asyncio.shield(session.worker.run(retired.aclose()))
        except Exception:  # the worker loop is gone (shutdown): the process exits anyway
            log.debug("could not close a replaced model client", exc_info=True)


async def _settle(
    session: Session, root: Root, task: Task, handle: asyncio.Task[Task]
) -> dict[str, Any]:
    try:
        await asyncio.shield(handle)
    except asyncio.CancelledError:
        if not handle.done():  # we were cancelled, not the task
            raise
    if handle.cancelled() or task.state is TaskState.CANCELLED:
        session.show(f"lsp-agent: {task.title}: cancelled; nothing was applied")
        return {"taskId": task.id, "state": str(TaskState.CANCELLED)}
    if task.state is not TaskState.SUCCEEDED:
        why = task.message or str(task.state)
        if task.state is TaskState.UNVERIFIED:
            why += f"; nothing was applied (lspAgent.applyTask {task.id} applies it anyway)"
        kind = (
            types.MessageType.Info
            if task.state is TaskState.NO_CHANGES
            else types.MessageType.Error
        )
        session.show(f"lsp-agent: {task.title}: {task.state}: {why}", kind)
        return {"taskId": task.id, "state": str(task.state), "error": why}
    outcome = await apply_result(session, root, task)
    if outcome.get("applied") and not session.supports_progress:
        session.show(f"lsp-agent: {task.title}: applied")  # the only sign it finished
    return {"taskId": task.id, **outcome}
