"""Custom requests: ``lspAgent/tasks`` (the journal plus live tasks) and ``lspAgent/context``
(the snapshot manifest for a document, or the one a task was given)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from lsp_agent.handlers.session import Session
from lsp_agent.handlers.wire import EncodedResult
from lsp_agent.tasks.model import ListedTask, task_summary

log = logging.getLogger(__name__)

TASKS = "lspAgent/tasks"
CONTEXT = "lspAgent/context"
LIST_LIMIT = 200


def _params(params: Any) -> dict[str, Any]:
    """Custom-method params arrive as pygls namedtuples (or None); back to a plain dict."""
    if params is None:
        return {}
    if isinstance(params, dict):
        return params
    if hasattr(params, "_asdict"):
        return dict(params._asdict())
    raise JsonRpcInvalidParams(f"params must be an object, got {params!r}")


def list_tasks(session: Session) -> list[ListedTask]:
    """Every workspace folder's tasks, newest first (blocking: call it in a thread, with the
    server's other reads: a listing never waits on the loop for SQLite, and a WAL checkpoint
    can take 30 ms). Live tasks win over their journal rows (they may be a write ahead)."""
    rows: list[ListedTask] = []
    for root in session.roots:
        if root.journal is not None:
            rows.extend(root.journal.summaries(limit=LIST_LIMIT))
    live = [
        ListedTask.of(task.created_at, task_summary(task))
        for root in session.roots
        if root.runner is not None
        for task in list(root.runner.tasks.values())
    ]
    merged = {row.summary["id"]: row for row in rows}
    merged.update((row.summary["id"], row) for row in live)
    ordered = sorted(merged.values(), key=lambda row: (-row.created_at, row.summary["id"]))
    return ordered[:LIST_LIMIT]


def _journaled_result(session: Session, task_id: str) -> dict[str, Any] | None:
    """The task's journaled (or live) result, ``{}`` before it has one; None: unknown task."""
    for root in session.roots:
        live = root.runner.tasks.get(task_id) if root.runner is not None else None
        task = live or (root.journal.get(task_id) if root.journal is not None else None)
        if task is not None:
            return dict(task.result or {})
    return None


def setup(server: LanguageServer, session: Session) -> None:
    @server.feature(TASKS)
    async def tasks(params: Any) -> EncodedResult:
        _params(params)
        from lsp_agent.handlers.goalflow import run_summaries

        def listing() -> EncodedResult:  # one trip to a thread: each one is a wait under load
            tasks = ",".join(row.encoded for row in list_tasks(session))
            runs = json.dumps(run_summaries(session))
            return EncodedResult(f'{{"tasks":[{tasks}],"runs":{runs}}}')

        return await asyncio.to_thread(listing)

    @server.feature(CONTEXT)
    async def context(params: Any) -> dict[str, Any]:
        data = _params(params)
        task_id, uri = data.get("taskId"), data.get("uri")
        if isinstance(task_id, str):
            from lsp_agent.agents.manifests import task_context

            manifest = session.manifests.get(task_id)
            result = await asyncio.to_thread(_journaled_result, session, task_id)
            if manifest is None and result is None:
                raise JsonRpcInvalidParams(f"no snapshot recorded for task {task_id!r}")
            # The snapshot's full manifest lives in memory for this session; its summary and
            # what went into each request (sections, files, tokens, duplicates, cached share)
            # are journaled with the task's result, so they are there after a restart too.
            return task_context(result, manifest)
        if not isinstance(uri, str):
            raise JsonRpcInvalidParams("lspAgent/context takes {'uri': str} or {'taskId': str}")
        try:
            root, path = session.roots.find(uri)
        except ValueError as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        await root.index_ready.wait()
        builder = root.builder
        if builder is None or root.closed:
            raise JsonRpcInvalidParams(root.index_error or "the index is not available")
        from lsp_agent.context.snapshot import budget_for

        budget = budget_for(session.settings, session.settings.model.model or None)

        def manifest() -> dict[str, Any]:
            from lsp_agent.agents.verification import resolve_checks
            from lsp_agent.verify.checks import checks_json

            data = builder.build(budget=budget, focus=[path]).manifest.to_json()
            checks, notes = resolve_checks(root.path, session.settings)
            data["checks"] = checks_json(checks)
            data["checkNotes"] = notes
            return data

        async with root.snapshot_lock:
            return await asyncio.get_running_loop().run_in_executor(None, manifest)
