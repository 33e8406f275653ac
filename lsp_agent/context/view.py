"""One version of the workspace for one task: the index with pinned texts in place of its own.

A task reads the open buffers as they were when it started (frozen), while the live index lags
the buffers by a debounce and keeps moving while the task runs. Everything the task sees — its
snapshot (``SnapshotBuilder.build(view=...)``) and every tool (``agents/tools.Workspace``) —
reads a ``TaskView``, so one prompt never holds two versions of a file (ruff's server hands its
background work one document snapshot in the same way). A pinned text that differs from the
index's is parsed with tree-sitter once, so ``definitions``, ``references`` and ``grep`` answer
from it too. The server pins the frozen buffers; a batch run pins a file's text before
``--apply`` rewrites it under a task that is still running (``pin``).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lsp_agent.index.generated import is_generated
from lsp_agent.index.languages import language_for_path
from lsp_agent.index.model import FileEntry
from lsp_agent.index.symbols import extract


def entry_for_text(path: str, text: str, like: FileEntry | None = None) -> FileEntry:
    """The index record ``text`` would get as an open buffer (tree-sitter symbols included)."""
    data = text.encode("utf-8", "surrogatepass")
    language = language_for_path(path)
    definitions, references, errors = extract(language, data) if language else ((), (), 0)
    return FileEntry(
        path=path,
        language=language,
        size=len(data),
        mtime_ns=like.mtime_ns if like is not None else time.time_ns(),
        sha256=hashlib.sha256(data).hexdigest(),
        lines=data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1),
        definitions=definitions,
        references=references,
        generated=is_generated(data),
        syntax_errors=errors,
        from_buffer=True,
    )


class TaskView:
    """``WorkspaceIndex``'s reading methods over the index, with ``pinned`` texts overriding it.

    Thread-safe: a batch run pins from the thread that applies another task's result.
    """

    def __init__(self, index: Any, texts: Mapping[str, str] | None = None) -> None:
        self.index = index
        self.root = Path(index.root)
        self._lock = threading.Lock()
        self._texts: dict[str, str] = {}
        self._entries: dict[str, FileEntry | None] = {}  # None: the text has no index entry
        for path, text in (texts or {}).items():
            self.pin(path, text)

    @property
    def pinned(self) -> dict[str, str]:
        with self._lock:
            return dict(self._texts)

    def pin(self, path: str, text: str, entry: FileEntry | None = None) -> None:
        """From now on ``path`` reads as ``text``. ``entry`` is its record when the caller has
        it (the index's, before a rewrite); otherwise the index's when its text is the same,
        else ``text`` parsed. A path the index leaves out (ignored) gets no entry."""
        current = self.index.get(path)
        if entry is None:
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
            if current is not None and current.sha256 == digest:
                entry = current
            elif current is not None or not self.index.is_ignored(path):
                entry = entry_for_text(path, text, current)
        with self._lock:
            if path in self._texts:  # the first pin wins: it is the version the task began with
                return
            self._texts[path] = text
            self._entries[path] = entry

    def _pins(self) -> tuple[dict[str, str], dict[str, FileEntry | None]]:
        with self._lock:
            return self._texts, dict(self._entries)

    # -- the IndexView / IndexLike surface -------------------------------------------------

    def entries(self) -> dict[str, FileEntry]:
        entries = self.index.entries()
        _, pinned = self._pins()
        if not pinned:
            return entries
        added = False
        for path, entry in pinned.items():
            if entry is None:
                entries.pop(path, None)
            else:
                added = added or path not in entries
                entries[path] = entry
        return dict(sorted(entries.items())) if added else entries

    def get(self, path: str) -> FileEntry | None:
        _, pinned = self._pins()
        return pinned[path] if path in pinned else self.index.get(path)

    def text(self, path: str) -> str | None:
        texts, _ = self._pins()
        return texts[path] if path in texts else self.index.text(path)

    def is_ignored(self, path: str) -> bool:
        return bool(self.index.is_ignored(path))

    def definitions(self, name: str) -> list[tuple[str, Any]]:
        return self._symbols(0, name, self.index.definitions(name))

    def references(self, name: str) -> list[tuple[str, Any]]:
        return self._symbols(1, name, self.index.references(name))

    def _symbols(self, which: int, name: str, hits: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        _, pinned = self._pins()
        if not pinned:
            return hits
        out = [(p, item) for p, item in hits if p not in pinned]
        for path, entry in pinned.items():
            if entry is not None:
                items = entry.definitions if which == 0 else entry.references
                out.extend((path, item) for item in items if item.name == name)
        # The index's order: by path, then position (line and column are fields 2 and 3 of
        # both Definition and Reference).
        out.sort(key=lambda hit: (hit[0], hit[1][2], hit[1][3]))
        return out

    def grep(
        self, pattern: str, *, regex: bool = False, limit: int = 200
    ) -> list[tuple[str, int, str]]:
        """(path, 0-based line, line text), in the index's order (path, then line)."""
        texts, pinned = self._pins()
        if not texts:
            return self.index.grep(pattern, regex=regex, limit=limit)
        try:
            compiled = re.compile(pattern if regex else re.escape(pattern))
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        # Ask the index for enough hits that dropping those in pinned files still leaves
        # ``limit``: its own hits in those files are at most what their index text holds.
        stale = sum(
            _hit_count(compiled, self.index.text(path) or "")
            for path in pinned
            if self.index.get(path) is not None
        )
        hits = self.index.grep(pattern, regex=regex, limit=limit + stale)
        hits = [h for h in hits if h[0] not in texts]
        for path, text in texts.items():
            if pinned.get(path) is None:
                continue  # not an index entry: grep never searched it
            hits.extend(
                (path, number, line)
                for number, line in enumerate(text.splitlines())
                if compiled.search(line)
            )
        hits.sort(key=lambda hit: (hit[0], hit[1]))
        return hits[:limit]


def _hit_count(compiled: re.Pattern[str], text: str) -> int:
    if not compiled.search(text):
        return 0
    return sum(1 for line in text.splitlines() if compiled.search(line))
