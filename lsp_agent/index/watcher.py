"""Follow changes made outside the editor (git checkout, codegen, another tool) with watchfiles.

Batches from ``watchfiles.awatch`` are already debounced; ignored paths are filtered before
they reach us. The re-read and re-parse run in a thread (``asyncio.to_thread``) so the event
loop that serves the editor never parses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import watchfiles

from lsp_agent.index.workspace import WorkspaceIndex, relative_path

log = logging.getLogger(__name__)

# Changes to these must reach the index even though .git itself is never indexed.
_ALWAYS_WATCHED = (".git/info/exclude",)


def _make_filter(index: WorkspaceIndex) -> Callable[[watchfiles.Change, str], bool]:
    def keep(change: watchfiles.Change, path: str) -> bool:
        try:
            rel = relative_path(index.root, path)
        except ValueError:
            return False
        if rel in _ALWAYS_WATCHED:
            return True
        if rel == ".git" or rel.startswith(".git/"):
            return False
        try:
            return not index.is_ignored(rel)
        except (OSError, ValueError):
            return True  # when in doubt let refresh() decide

    return keep


async def watch(
    index: WorkspaceIndex,
    *,
    stop: asyncio.Event | None = None,
    debounce_ms: int = 50,
    on_change: Callable[[set[str]], None] | None = None,
) -> None:
    """Refresh ``index`` on every batch of file changes until ``stop`` is set (or cancelled)."""
    async for batch in watchfiles.awatch(
        index.root,
        watch_filter=_make_filter(index),
        debounce=debounce_ms,
        step=min(50, max(debounce_ms, 1)),
        stop_event=stop,
        recursive=True,
    ):
        paths = {path for _change, path in batch}
        try:
            changed = await asyncio.to_thread(index.refresh, paths)
        except Exception:
            log.exception("refreshing the index after %d file changes failed", len(paths))
            continue
        if changed:
            log.debug("watcher: %d paths changed", len(changed))
            if on_change is not None:
                on_change(changed)
