"""The one mutable session of a running server.

Fast handlers change it; background work (indexing, tasks) reads frozen copies taken from it
(``Root.freeze``), never the live dictionaries, so a keystroke during a task cannot tear what
the task sees. Per-folder state (index, journal, runner, documents) lives in roots.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lsp_agent.config import Settings
from lsp_agent.handlers.model_clients import ModelClients
from lsp_agent.handlers.roots import FrozenDocuments, OpenDocument, Root, RootSet

if TYPE_CHECKING:  # heavy modules load lazily, after the first response
    from lsp_agent.handlers.worker_loop import WorkerLoop

__all__ = ["FrozenDocuments", "OpenDocument", "Root", "Session"]

log = logging.getLogger(__name__)

# Snapshot manifests kept for lspAgent/context {taskId}: one is megabytes of JSON on a large tree
# (7.3 MB at 32k files), and only recent tasks are asked about. Older tasks answer from the
# journal (their per-request records) without the manifest.
KEEP_MANIFESTS = 8


class RecentManifests(OrderedDict[str, dict[str, Any]]):
    """Task id -> snapshot manifest, the newest ``limit`` only."""

    def __init__(self, limit: int = KEEP_MANIFESTS) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, task_id: str, manifest: dict[str, Any]) -> None:
        super().__setitem__(task_id, manifest)
        self.move_to_end(task_id)
        while len(self) > self.limit:
            self.popitem(last=False)


@dataclass
class Session:
    server: LanguageServer
    roots: RootSet = field(default_factory=RootSet)  # one per workspace folder
    settings: Settings = field(default_factory=Settings)
    base_settings: Settings = field(default_factory=Settings)  # files + env + init options
    pending_warnings: list[str] = field(default_factory=list)
    capabilities: types.ClientCapabilities = field(default_factory=types.ClientCapabilities)
    initialization_options: Mapping[str, Any] = field(default_factory=dict)
    initialized: bool = False  # after `initialized`: a folder added now is indexed at once
    # Manifests of the snapshots recent tasks were given, for lspAgent/context {taskId}.
    manifests: RecentManifests = field(default_factory=RecentManifests)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    client_log: logging.Handler | None = None
    worker: WorkerLoop | None = None  # the agent worker's own loop and thread
    # Roots index one after another: two full builds at once would only split 2 cores.
    index_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    feeder: Any = None  # document_sync.IndexFeeder: buffers -> each root's index
    goal_runs: Any = None  # goalflow.GoalRuns: the goal runs this server drives
    applying: set[str] = field(default_factory=set)  # task ids with an applyEdit in flight
    model_clients: ModelClients = field(default_factory=ModelClients)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def root(self) -> Path:
        """The primary folder (settings files are read there); cwd before initialize."""
        primary = self.roots.primary
        return primary.path if primary is not None else Path.cwd().resolve()

    def spawn_for(self, root: Root, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Background work that belongs to one root: removing the folder cancels it."""
        task = self.spawn(coro, name)
        root.jobs.add(task)
        task.add_done_callback(root.jobs.discard)

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
