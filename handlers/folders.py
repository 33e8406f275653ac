"""Workspace folders: every folder of ``initialize`` becomes a Root; then
``workspace/didChangeWorkspaceFolders`` opens and closes roots.

A root is opened with its journal and runner at once (a journaled task can be listed and applied
before indexing ends); its index is built in the background by ``indexing.index_workspace``.
Closing a root cancels its tasks (the runner journals them as cancelled), its indexing and its
watcher, then closes its journal.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from lsp_agent.handlers.indexing import INDEX_TOKEN, index_workspace
from lsp_agent.handlers.journal_writer import DeferredJournal
from lsp_agent.handlers.session import Root, Session
from lsp_agent.tasks.journal import TaskJournal
from lsp_agent.tasks.runner import TaskRunner

log = logging.getLogger(__name__)


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
    retention = session.settings.journal
    session.spawn_for(
        root,
        asyncio.to_thread(
            root.journal.prune,
            keep_tasks=retention.keep_tasks,
            keep_days=retention.keep_days,
            transcripts=root.cache_dir / "transcripts",
        ),
        f"prune the journal of {root.name}",
    )
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


def open_initial_folders(session: Session, params: types.InitializeParams) -> None:
    for number, (path, uri, name) in enumerate(workspace_folders(params)):
        # The first folder keeps the single-root token editors already know.
        token = INDEX_TOKEN if number == 0 else f"{INDEX_TOKEN}/{uri}"
        open_root(session, path, uri, name, token)


def setup(server: LanguageServer, session: Session) -> None:
    # pygls runs async notification handlers concurrently; changes must apply in order, so a
    # folder removed and added again reopens its journal only after the old one is closed.
    changing = asyncio.Lock()

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_folders(params: types.DidChangeWorkspaceFoldersParams) -> None:
        async with changing:
            # Removed first: a folder that moved (removed + added) must not clash with itself.
            for folder in params.event.removed or []:
                await remove_folder(session, folder.uri)
            for folder in params.event.added or []:
                add_folder(session, folder)
            if session.feeder is not None:
                session.feeder.retrack_all()  # open buffers may now belong to another folder
