"""Custom requests: ``lspAgent/tasks`` (the journal plus live tasks) and ``lspAgent/context``
(the snapshot manifest for a document, or the one a task was given)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from lsp_agent.handlers.session import Session
from lsp_agent.tasks import task_summary

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


def list_tasks(session: Session) -> list[dict[str, Any]]:
    """Every workspace folder's tasks, newest first. Live tasks win over their journal rows
    (they may be a write ahead)."""
    merged: dict[str, Any] = {}
    for root in session.roots:
        journaled = root.journal.list(limit=LIST_LIMIT) if root.journal else []
        merged.update((t.id, t) for t in journaled)
        merged.update(root.runner.tasks if root.runner else {})
    ordered = sorted(merged.values(), key=lambda t: (-t.created_at, t.id))
    return [task_summary(t) for t in ordered[:LIST_LIMIT]]


def setup(server: LanguageServer, session: Session) -> None:
    @server.feature(TASKS)
    def tasks(params: Any) -> dict[str, Any]:
        _params(params)
        return {"tasks": list_tasks(session)}

    @server.feature(CONTEXT)
    async def context(params: Any) -> dict[str, Any]:
        data = _params(params)
        task_id, uri = data.get("taskId"), data.get("uri")
        if isinstance(task_id, str):
            manifest = session.manifests.get(task_id)
            if manifest is None:
                raise JsonRpcInvalidParams(f"no snapshot recorded for task {task_id!r}")
            return manifest
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
        async with root.snapshot_lock:
            return await asyncio.get_running_loop().run_in_executor(
                None, lambda: builder.build(budget=budget, focus=[path]).manifest.to_json()
            )
