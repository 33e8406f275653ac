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
from pygls.uris import from_fs_path, to_fs_path

from lsp_agent.handlers import client_log, configuration
from lsp_agent.handlers.journal_writer import DeferredJournal
from lsp_agent.handlers.progress import WorkProgress
from lsp_agent.handlers.session import Root, Session
from lsp_agent.handlers.worker_loop import WorkerLoop
from lsp_agent.tasks import TaskJournal, TaskRunner

log = logging.getLogger(__name__)

INDEX_TOKEN = "lsp-agent/index"
_REPORT_EVERY_S = 0.2  # at most five index progress messages a second


def workspace_folders(params: types.InitializeParams) -> list[tuple[Path, str, str]]:
    """(resolved path, uri, name) of every folder the client opened, in its order; without
    workspaceFolders the rootUri / rootPath, else the current directory."""
    folders: list[tuple[Path, str, str]] = []
    for folder in params.workspace_folders or []:
        path = to_fs_path(folder.uri)
        if path and all(Path(path).resolve() != f[0] for f in folders):
            folders.append((Path(path).resolve(), folder.uri, folder.name))
    if folders:
        return folders
    path = to_fs_path(params.root_uri) if params.root_uri else None
    if not path and params.root_path:
        path = params.root_path
    resolved = Path(path).resolve() if path else Path.cwd().resolve()
    return [(resolved, from_fs_path(str(resolved)) or "", resolved.name)]


def workspace_root(params: types.InitializeParams) -> Path:
    """The primary folder: the first workspace folder, else rootUri / rootPath / cwd."""
    return workspace_folders(params)[0][0]


def open_root(session: Session, path: Path, uri: str, name: str, token: str) -> Root:
    """A new root with its journal and runner (no index yet), registered in the session."""
    token = session.roots.unique_token(token)
    root = Root(path=path, uri=uri, name=name or path.name, index_token=token)
    root.journal = DeferredJournal(TaskJournal(root.cache_dir / "tasks.sqlite"))
    root.runner = TaskRunner(concurrency=max(1, session.settings.jobs), journal=root.journal)
    session.roots.add(root)
    log.info("workspace folder %s, cache %s", root.path, root.cache_dir)
    return root


def add_folder(session: Session, folder: types.WorkspaceFolder) -> Root | None:
    """didChangeWorkspaceFolders added ``folder``: open it and, once initialized, index it."""
    fs_path = to_fs_path(folder.uri)
    if not fs_path:
        log.warning("ignoring workspace folder %s: not a file URI", folder.uri)
        return None
    path = Path(fs_path).resolve()
    if session.roots.get(path) is not None:
        return None
    root = open_root(session, path, folder.uri, folder.name, f"{INDEX_TOKEN}/{folder.uri}")
    if session.initialized:
        session.spawn_for(root, index_workspace(session, root), f"index {root.name}")
    return root


async def close_root(session: Session, root: Root) -> None:
    """Stop everything a root runs: its tasks (journaled as cancelled), indexing, watcher."""
    root.closed = True
    if root.runner is not None:
        await root.runner.shutdown()
    jobs = [job for job in root.jobs if not job.done()]
    for job in jobs:
        job.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)
    if not root.index_ready.is_set():  # wake anyone waiting for this root's index
        root.index_error = root.index_error or f"workspace folder {root.path} was removed"
        root.index_ready.set()
    if root.journal is not None:
        root.journal.close()
        root.journal = None


async def remove_folder(session: Session, uri: str) -> Root | None:
    fs_path = to_fs_path(uri)
    root = session.roots.remove(Path(fs_path).resolve()) if fs_path else None
    if root is None:
        log.warning("didChangeWorkspaceFolders removed %s, which is not a folder here", uri)
        return None
    await close_root(session, root)
    log.info("workspace folder %s removed", root.path)
    return root


async def index_workspace(session: Session, root: Root) -> None:
    """Build the root's index off the loop, reporting progress; then start its watcher.
    Roots take turns (session.index_lock)."""
    from lsp_agent.context.snapshot import SnapshotBuilder
    from lsp_agent.index import WorkspaceIndex

    loop = asyncio.get_running_loop()
    title = "lsp-agent: indexing"
    if len(session.roots) > 1 or root.index_token != INDEX_TOKEN:
        title = f"lsp-agent: indexing {root.name}"
    progress = WorkProgress(session, root.index_token, title)
    last = 0.0

    def on_progress(done: int, total: int) -> None:  # runs in the indexing thread
        nonlocal last
        now = time.monotonic()
        if now - last < _REPORT_EVERY_S and done < total:
            return
        last = now
        percent = done * 100 // total if total else 0
        loop.call_soon_threadsafe(progress.report, f"{done}/{total} files", percent)

    async with session.index_lock:
        if root.closed:
            return
        await progress.begin(str(root.path))
        try:
            index = await loop.run_in_executor(
                None, lambda: WorkspaceIndex(root.path, session.settings.index)
            )
            root.index = index
            # Buffers opened before the index existed override disk from the start.
            opened = [(doc.path, doc.text) for doc in root.documents.values()]

            def build() -> Any:
                for path, text in opened:
                    index.update(path, text)
                return index.build(progress=on_progress)

            stats = await loop.run_in_executor(None, build)
            root.builder = SnapshotBuilder(
                index, session.settings.context, state_dir=root.cache_dir / "snapshot"
            )
        except asyncio.CancelledError:
            progress.end("the workspace folder was removed")
            raise
        except Exception as exc:
            root.index_error = f"indexing failed: {type(exc).__name__}: {exc}"
            log.exception("indexing %s failed", root.path)
            progress.end(root.index_error)
            session.show(f"lsp-agent: {root.index_error}", types.MessageType.Error)
            root.index_ready.set()
            return
    # The index is long-lived and acyclic (tuples, strings): keep the cyclic collector from
    # rescanning its ~0.5M objects, a full collection that stalls every thread for ~0.1 s.
    gc.freeze()
    message = f"{stats.files} files, {stats.definitions} definitions in {stats.seconds:.1f}s"
    log.info("indexed %s: %s", root.path, message)
    progress.end(message)
    root.index_ready.set()
    session.spawn_for(root, _watch(session, root), f"watcher {root.name}")


async def _watch(session: Session, root: Root) -> None:
    from lsp_agent.index import watch

    assert root.index is not None and session.worker is not None
    try:
        # On the worker loop: starting the watcher walks the tree (~0.3 s on the stdlib).
        # Cancelling this coroutine (shutdown, folder removed) cancels it there.
        await session.worker.run(watch(root.index))
    except Exception as exc:  # e.g. inotify limits: the server works on, without live updates
        log.warning("file watcher for %s stopped: %s", root.path, exc)
        session.log_to_client(
            f"lsp-agent: file watcher for {root.path} stopped: {exc}", types.MessageType.Warning
        )


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
        folders = workspace_folders(params)
        # Settings first (files of the primary folder): a root's runner takes settings.jobs.
        configuration.apply_initialization_options(
            session, params.initialization_options, folders[0][0]
        )
        for number, (path, uri, name) in enumerate(folders):
            # The first folder keeps the single-root token editors already know.
            token = INDEX_TOKEN if number == 0 else f"{INDEX_TOKEN}/{uri}"
            open_root(session, path, uri, name, token)
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

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_folders(params: types.DidChangeWorkspaceFoldersParams) -> None:
        # Removed first: a folder that moved (removed + added) must not clash with itself.
        for folder in params.event.removed or []:
            await remove_folder(session, folder.uri)
        for folder in params.event.added or []:
            add_folder(session, folder)
        if session.feeder is not None:
            session.feeder.retrack_all()  # open buffers may now belong to another folder

    @server.feature(types.SHUTDOWN)
    async def shutdown(params: None) -> None:
        session.stop.set()
        for root in session.roots:
            if root.runner is not None:
                await root.runner.shutdown()  # cancelled tasks are journaled as cancelled
        await session.cancel_background()
        if session.worker is not None:
            session.worker.close()
        for root in session.roots:
            root.closed = True
            if root.journal is not None:
                root.journal.close()
                root.journal = None
        if session.client_log is not None:
            client_log.uninstall(session.client_log)
            session.client_log = None
        log.info("shut down")
