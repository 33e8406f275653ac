"""Indexing one workspace folder in the background, with work-done progress; then its watcher,
and its snapshot prefix rendered ahead of the first request.

Indexing is CPU work and runs in an executor; the loop only relays its progress, so the server
answers code actions while a large workspace is still being indexed. Folders take turns
(``Session.index_lock``): two builds at once would only split the machine's cores.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from lsprotocol import types

from lsp_agent.handlers.session import Root, Session
from lsp_agent.handlers.work_progress import WorkProgress

log = logging.getLogger(__name__)

INDEX_TOKEN = "lsp-agent/index"  # the first folder's; the others add "/<folder uri>"
_REPORT_EVERY_S = 0.2  # at most five index progress messages a second


async def index_workspace(session: Session, root: Root) -> None:
    """Build the root's index off the loop, reporting progress; then start its watcher.
    Roots take turns (session.index_lock)."""
    from lsp_agent.context.snapshot import SnapshotBuilder
    from lsp_agent.index import WorkspaceIndex

    loop = asyncio.get_running_loop()
    subject = "indexing"
    if len(session.roots) > 1 or root.index_token != INDEX_TOKEN:
        subject = f"indexing {root.name}"
    progress = WorkProgress(session, root.index_token, subject)
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
    session.spawn_for(root, _prefix_ahead(session, root), f"snapshot prefix {root.name}")
    if session.goal_runs is not None:  # a goal run its killed process left behind goes on
        session.spawn_for(root, session.goal_runs.resume_interrupted(root), "resume goal runs")


async def _prefix_ahead(session: Session, root: Root) -> None:
    """Rank the files and render the snapshot's stable prefix now, while the user has not
    asked for anything yet: the first task or context request then reuses it instead of
    waiting (~6 s on the Linux kernel), and it persists to the state dir, so a restart on the
    same files reads it back. A failure here is only logged: the first request tries again."""
    from lsp_agent.context.snapshot import budget_for

    builder = root.builder
    if builder is None:
        return
    budget = budget_for(session.settings, session.settings.model.model or None)
    started = time.monotonic()
    try:
        async with root.snapshot_lock:  # a request that came first has built it already
            if root.closed:
                return
            snapshot = await asyncio.get_running_loop().run_in_executor(
                None, lambda: builder.build(budget=budget)
            )
    except Exception as exc:
        log.warning("rendering the snapshot prefix of %s ahead failed: %s", root.path, exc)
        return
    log.info(
        "snapshot prefix of %s ready: %d tokens in %.1fs (%s)",
        root.path,
        snapshot.manifest.prefix_tokens,
        time.monotonic() - started,
        "rendered" if snapshot.manifest.rebuilt else "reused",
    )
    # A large tree's prefix was ranked without the reference graph: make it now (and keep
    # it on disk), not when the first focused request waits for it (~1.1 s on the kernel).
    try:
        await asyncio.get_running_loop().run_in_executor(None, builder.rank_ahead)
    except Exception as exc:
        log.warning("making the reference graph of %s ahead failed: %s", root.path, exc)


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
