"""The one mutable session of a running server.

Fast handlers change it; background work (indexing, tasks) reads frozen copies taken from it
(``freeze``), never the live dictionaries, so a keystroke during a task cannot tear what the task
sees.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_agent.config import Settings, workspace_cache_dir

if TYPE_CHECKING:  # heavy modules load lazily, after the first response
    from lsp_agent.context.snapshot import SnapshotBuilder
    from lsp_agent.handlers.journal_writer import DeferredJournal
    from lsp_agent.handlers.worker_loop import WorkerLoop
    from lsp_agent.index.workspace import WorkspaceIndex
    from lsp_agent.tasks import TaskJournal, TaskRunner

log = logging.getLogger(__name__)


@dataclass
class OpenDocument:
    uri: str
    path: str  # root-relative POSIX
    version: int
    text: str


@dataclass(frozen=True)
class FrozenDocuments:
    """The open buffers at the moment a task started: what it reads and what its edits target."""

    texts: Mapping[str, str]  # path -> text
    versions: Mapping[str, int]  # path -> LSP version
    uris: Mapping[str, str]  # path -> uri as the client spelled it


@dataclass
class Session:
    server: LanguageServer
    root: Path = field(default_factory=lambda: Path.cwd().resolve())
    settings: Settings = field(default_factory=Settings)
    base_settings: Settings = field(default_factory=Settings)  # files + env + init options
    pending_warnings: list[str] = field(default_factory=list)
    capabilities: types.ClientCapabilities = field(default_factory=types.ClientCapabilities)
    initialization_options: Mapping[str, Any] = field(default_factory=dict)
    documents: dict[str, OpenDocument] = field(default_factory=dict)  # by path
    index: WorkspaceIndex | None = None
    builder: SnapshotBuilder | None = None
    journal: DeferredJournal | TaskJournal | None = None
    runner: TaskRunner | None = None
    index_ready: asyncio.Event = field(default_factory=asyncio.Event)
    index_error: str | None = None
    # Manifests of the snapshots tasks were given, for lspAgent/context {taskId}.
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    client_log: logging.Handler | None = None
    worker: WorkerLoop | None = None  # the agent worker's own loop and thread
    snapshot_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    applying: set[str] = field(default_factory=set)  # task ids with an applyEdit in flight
    # One shared model client per settings object: (settings, client) keyed by id(settings).
    model_clients: dict[int, tuple[Settings, Any]] = field(default_factory=dict)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def cache_dir(self) -> Path:
        return workspace_cache_dir(self.root)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start background work, keeping a reference (else it may be garbage collected
        mid-flight) and logging a crash instead of losing it."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_background(self) -> None:
        pending = [t for t in self._background if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def freeze(self) -> FrozenDocuments:
        docs = list(self.documents.values())
        return FrozenDocuments(
            texts={d.path: d.text for d in docs},
            versions={d.path: d.version for d in docs},
            uris={d.path: d.uri for d in docs},
        )

    # -- talking to the user -------------------------------------------------------------

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.server.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log_to_client(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.server.window_log_message(types.LogMessageParams(type=kind, message=message))

    # -- client capabilities -------------------------------------------------------------

    @property
    def supports_progress(self) -> bool:
        window = self.capabilities.window
        return bool(window and window.work_done_progress)

    @property
    def supports_apply_edit(self) -> bool:
        workspace = self.capabilities.workspace
        return bool(workspace and workspace.apply_edit)

    @property
    def supports_configuration(self) -> bool:
        workspace = self.capabilities.workspace
        return bool(workspace and workspace.configuration)

    @property
    def supports_document_changes(self) -> bool:
        workspace = self.capabilities.workspace
        edit = workspace.workspace_edit if workspace else None
        return bool(edit and edit.document_changes)

    @property
    def supports_change_annotations(self) -> bool:
        workspace = self.capabilities.workspace
        edit = workspace.workspace_edit if workspace else None
        return bool(edit and edit.change_annotation_support is not None)

    @property
    def supports_create_file(self) -> bool:
        workspace = self.capabilities.workspace
        edit = workspace.workspace_edit if workspace else None
        kinds = (edit.resource_operations if edit else None) or []
        return types.ResourceOperationKind.Create in kinds

    @property
    def code_action_resolve_properties(self) -> frozenset[str]:
        document = self.capabilities.text_document
        action = document.code_action if document else None
        support = action.resolve_support if action else None
        return frozenset(support.properties) if support else frozenset()
