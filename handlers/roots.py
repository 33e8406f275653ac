"""Workspace folders: one ``Root`` per folder, each with its own index, snapshot builder, task
journal and runner, and the open documents that belong to it.

A document belongs to the folder that contains it; with nested folders the longest (innermost)
root wins. A file in no folder belongs to none: it gets no code actions and a task or context
request for it is refused with InvalidParams naming the folders (see docs/architecture.md).
Engine paths stay relative to their own root, so a task's edits resolve against that root only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pygls.uris import to_fs_path

from lsp_agent.config import workspace_cache_dir

if TYPE_CHECKING:  # heavy modules load lazily, after the first response
    from lsp_agent.context.snapshot import SnapshotBuilder
    from lsp_agent.handlers.journal_writer import DeferredJournal
    from lsp_agent.index.workspace import WorkspaceIndex
    from lsp_agent.tasks.journal import TaskJournal
    from lsp_agent.tasks.runner import TaskRunner


HISTORY_VERSIONS = 8  # earlier versions kept per buffer, to move a range the client sent


@dataclass
class OpenDocument:
    uri: str
    path: str  # relative to its root, POSIX
    version: int
    text: str
    # (version, text) of the last few earlier versions: a code action is computed against one
    # version and may run (after an instruction prompt) against a later one.
    history: tuple[tuple[int, str], ...] = ()

    def text_at(self, version: int) -> str | None:
        if version == self.version:
            return self.text
        return next((text for v, text in self.history if v == version), None)


@dataclass(frozen=True)
class FrozenDocuments:
    """The open buffers at the moment a task started: what it reads and what its edits target."""

    texts: Mapping[str, str]  # path -> text
    versions: Mapping[str, int]  # path -> LSP version
    uris: Mapping[str, str]  # path -> uri as the client spelled it


@dataclass(eq=False)  # identity semantics: a root is a live object, used as a dict key
class Root:
    path: Path  # resolved
    uri: str
    name: str
    index_token: str  # work-done progress token of its indexing
    documents: dict[str, OpenDocument] = field(default_factory=dict)  # by root-relative path
    index: WorkspaceIndex | None = None
    builder: SnapshotBuilder | None = None
    journal: DeferredJournal | TaskJournal | None = None
    runner: TaskRunner | None = None
    index_ready: asyncio.Event = field(default_factory=asyncio.Event)
    index_error: str | None = None
    snapshot_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False  # removed from the workspace (didChangeWorkspaceFolders) or shut down
    jobs: set[asyncio.Task[Any]] = field(default_factory=set)  # its indexing and watcher
    # One workspace/applyEdit at a time: a task plans against what the one before it left.
    apply_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Files the editor did not have open when an edit of ours was applied to them: the
    # editor now holds (before, after) texts in memory that disk may not show until it saves.
    applied_unopened: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def cache_dir(self) -> Path:
        return workspace_cache_dir(self.path)

    def relative(self, fs_path: Path) -> str | None:
        """Root-relative POSIX path of a resolved path, None when it is not inside."""
        try:
            relative = fs_path.relative_to(self.path)
        except ValueError:
            return None
        return relative.as_posix() if relative.parts else None

    def freeze(self) -> FrozenDocuments:
        docs = list(self.documents.values())
        return FrozenDocuments(
            texts={d.path: d.text for d in docs},
            versions={d.path: d.version for d in docs},
            uris={d.path: d.uri for d in docs},
        )


class RootSet:
    """The workspace folders in the order the client gave them; the first is the primary
    (settings files are read from it)."""

    def __init__(self) -> None:
        self._roots: dict[Path, Root] = {}
        self._tokens: set[str] = set()

    def unique_token(self, token: str) -> str:
        """``token``, or ``token#N`` when a folder removed and added again used it already: a
        client may refuse a progress token it has seen."""
        unique, number = token, 1
        while unique in self._tokens:
            number += 1
            unique = f"{token}#{number}"
        self._tokens.add(unique)
        return unique

    def __iter__(self) -> Iterator[Root]:
        return iter(list(self._roots.values()))

    def __len__(self) -> int:
        return len(self._roots)

    def get(self, path: Path) -> Root | None:
        return self._roots.get(path)

    def add(self, root: Root) -> None:
        if root.path in self._roots:
            raise ValueError(f"{root.path} is already a workspace folder")
        self._roots[root.path] = root

    def remove(self, path: Path) -> Root | None:
        return self._roots.pop(path, None)

    @property
    def primary(self) -> Root | None:
        return next(iter(self._roots.values()), None)

    def find(self, uri: str) -> tuple[Root, str]:
        """The innermost root containing ``uri`` and the path relative to it; ValueError for a
        non-file URI, a folder itself, or a file in no workspace folder."""
        fs_path = to_fs_path(uri)
        if fs_path is None:
            raise ValueError(f"not a file URI: {uri!r}")
        resolved = Path(fs_path).resolve()
        best: tuple[Root, str] | None = None
        for root in self._roots.values():
            relative = root.relative(resolved)
            if relative is not None and (
                best is None or len(root.path.parts) > len(best[0].path.parts)
            ):
                best = (root, relative)
        if best is None:
            folders = ", ".join(str(r.path) for r in self._roots.values()) or "none"
            raise ValueError(f"{fs_path} is outside the workspace (folders: {folders})")
        return best

    def with_task(self, task_id: str) -> tuple[Root, Any] | None:
        """The root whose runner or journal knows ``task_id``, and the task."""
        for root in self:
            live = root.runner.tasks.get(task_id) if root.runner else None
            task = live or (root.journal.get(task_id) if root.journal else None)
            if task is not None:
                return root, task
        return None
