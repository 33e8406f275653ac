"""initialize → initialized (settings, background indexing with progress, the watcher) → shutdown.

Indexing is CPU work and runs in an executor; the loop only relays its progress, so the server
answers code actions while a large workspace is still being indexed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lsp_agent.handlers import client_log, configuration
from lsp_agent.handlers.journal_writer import DeferredJournal
from lsp_agent.handlers.progress import WorkProgress
from lsp_agent.handlers.session import Session
from lsp_agent.handlers.worker_loop import WorkerLoop
from lsp_agent.tasks import TaskJournal, TaskRunner

log = logging.getLogger(__name__)

INDEX_TOKEN = "lsp-agent/index"
_REPORT_EVERY_S = 0.2  # at most five index progress messages a second


def workspace_root(params: types.InitializeParams) -> Path:
    candidates: list[str | None] = []
    if params.workspace_folders:
        candidates.append(params.workspace_folders[0].uri)
    candidates.append(params.root_uri)
    for uri in candidates:
        path = to_fs_path(uri) if uri else None
        if path:
            return Path(path).resolve()
    if params.root_path:
        return Path(params.root_path).resolve()
    return Path.cwd().resolve()


def open_journal(session: Session) -> None:
    session.journal = DeferredJournal(TaskJournal(session.cache_dir / "tasks.sqlite"))
    session.runner = TaskRunner(concurrency=max(1, session.settings.jobs), journal=session.journal)


async def index_workspace(session: Session) -> None:
    """Build the index off the loop, reporting progress; then start the watcher."""
    from lsp_agent.context.snapshot import SnapshotBuilder
    from lsp_agent.index import WorkspaceIndex

    loop = asyncio.get_running_loop()
    progress = WorkProgress(session, INDEX_TOKEN, "lsp-agent: indexing")
    await progress.begin(str(session.root))
    last = 0.0

    def on_progress(done: int, total: int) -> None:  # runs in the indexing thread
        nonlocal last
        now = time.monotonic()
        if now - last < _REPORT_EVERY_S and done < total:
            return
        last = now
        percent = done * 100 // total if total else 0
        loop.call_soon_threadsafe(progress.report, f"{done}/{total} files", percent)

    try:
        index = await loop.run_in_executor(
            None, lambda: WorkspaceIndex(session.root, session.settings.index)
        )
        session.index = index
        # Buffers opened before the index existed override disk from the start.
        opened = [(doc.path, doc.text) for doc in session.documents.values()]

        def build() -> Any:
            for path, text in opened:
                index.update(path, text)
            return index.build(progress=on_progress)

        stats = await loop.run_in_executor(None, build)
        session.builder = SnapshotBuilder(
            index, session.settings.context, state_dir=session.cache_dir / "snapshot"
        )
    except Exception as exc:
        session.index_error = f"indexing failed: {type(exc).__name__}: {exc}"
        log.exception("indexing %s failed", session.root)
        progress.end(session.index_error)
        session.show(f"lsp-agent: {session.index_error}", types.MessageType.Error)
        session.index_ready.set()
        return
    # The index is long-lived and acyclic (tuples, strings): keep the cyclic collector from
    # rescanning its ~0.5M objects, a full collection that stalls every thread for ~0.1 s.
    gc.freeze()
    message = f"{stats.files} files, {stats.definitions} definitions in {stats.seconds:.1f}s"
    log.info("indexed %s: %s", session.root, message)
    progress.end(message)
    session.index_ready.set()
    session.spawn(_watch(session), "watcher")


async def _watch(session: Session) -> None:
    from lsp_agent.index import watch

    assert session.index is not None and session.worker is not None
    try:
        # On the worker loop: starting the watcher walks the tree (~0.3 s on the stdlib).
        # Cancelling this coroutine (shutdown) cancels it there.
        await session.worker.run(watch(session.index))
    except Exception as exc:  # e.g. inotify limits: the server works on, without live updates
        log.warning("file watcher stopped: %s", exc)
        session.log_to_client(f"lsp-agent: file watcher stopped: {exc}", types.MessageType.Warning)


def _preload() -> None:
    try:
        import lsp_agent.agents.client
        import lsp_agent.agents.orchestrator
        import lsp_agent.context.snapshot  # noqa: F401
    except Exception:  # the first task will report the same error properly
        log.exception("preloading the worker modules failed")


def setup(server: LanguageServer, session: Session) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        session.capabilities = params.capabilities
        session.root = workspace_root(params)
        configuration.apply_initialization_options(session, params.initialization_options)
        open_journal(session)
        session.worker = WorkerLoop()
        log.info("workspace root %s, cache %s", session.root, session.cache_dir)

    @server.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        session.client_log = client_log.install(session)
        warnings, session.pending_warnings = session.pending_warnings, []
        configuration.warn(session, "initializationOptions", warnings)
        await configuration.pull_configuration(session)
        session.spawn(index_workspace(session), "index")
        # Import the worker's modules off the loop now, not on the first runTask (~0.3 s).
        asyncio.get_running_loop().run_in_executor(None, _preload)

    @server.feature(types.SHUTDOWN)
    async def shutdown(params: None) -> None:
        session.stop.set()
        if session.runner is not None:
            await session.runner.shutdown()  # cancelled tasks are journaled as cancelled
        await session.cancel_background()
        if session.worker is not None:
            session.worker.close()
        if session.journal is not None:
            session.journal.close()
            session.journal = None
        if session.client_log is not None:
            client_log.uninstall(session.client_log)
            session.client_log = None
        log.info("shut down")
