"""initialize (a root per workspace folder) → initialized (settings, background indexing of
every root, see indexing.py) → shutdown (tasks cancelled and journaled, journals closed)."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_agent.handlers import client_log, configuration, folders
from lsp_agent.handlers.indexing import index_workspace
from lsp_agent.handlers.session import Session
from lsp_agent.handlers.worker_loop import WorkerLoop

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_S = 0.8  # the shutdown answer within 1 s, whatever a thread is doing


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
        # Settings first (files of the primary folder): a root's runner takes settings.jobs.
        configuration.apply_initialization_options(
            session, params.initialization_options, folders.workspace_root(params)
        )
        folders.open_initial_folders(session, params)
        session.worker = WorkerLoop()

    @server.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        session.client_log = client_log.install(session)
        warnings, session.pending_warnings = session.pending_warnings, []
        configuration.warn(session, "initializationOptions", warnings)
        await configuration.pull_configuration(session)
        session.initialized = True
        for root in session.roots:  # one after another (index_lock), in the client's order
            session.spawn_for(root, index_workspace(session, root), f"index {root.name}")
        # Import the worker's modules off the loop now, not on the first runTask (~0.3 s).
        asyncio.get_running_loop().run_in_executor(None, _preload)

    @server.feature(types.SHUTDOWN)
    async def shutdown(params: None) -> None:
        session.stop.set()
        for root in session.roots:
            if root.runner is not None:
                await root.runner.shutdown()  # cancelled tasks are journaled as cancelled
        await session.cancel_background()
        journals = [root.journal for root in session.roots if root.journal is not None]
        for root in session.roots:
            root.closed = True
            root.journal = None
        worker = session.worker
        indexes = [root.index for root in session.roots if root.index is not None]

        def close_threads() -> None:
            # Joins: the journal writers (flushing the cancelled states) and the worker loop.
            for journal in journals:
                journal.close()
            if worker is not None:
                worker.close()
            # Saves since the last heads snapshot: write it now rather than leave the next
            # start to decode every row (an exit mid-write leaves the old one: one transaction).
            for index in indexes:
                index.write_heads()

        # Off the loop, and the answer waits at most SHUTDOWN_WAIT_S: a worker thread in the
        # middle of CPU work (a prompt, a parse) used to hold shutdown up to 5 s per join. What
        # is still queued then is written by the journal writer's atexit flush.
        closing = asyncio.ensure_future(asyncio.to_thread(close_threads))
        done, _ = await asyncio.wait({closing}, timeout=SHUTDOWN_WAIT_S)
        if not done:
            log.warning("shutdown: threads still closing after %.1f s; answering", SHUTDOWN_WAIT_S)
        if session.client_log is not None:
            client_log.uninstall(session.client_log)
            session.client_log = None
        log.info("shut down")
