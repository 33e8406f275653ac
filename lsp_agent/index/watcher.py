"""Follow changes made outside the editor (git checkout, codegen, another tool) with watchfiles.

The OS watches only what ``watchplan`` chooses — never a directory inside an ignored tree —
through watchfiles' Rust backend (``RustNotify``, the engine under ``awatch``): one notifier for
the subtrees watched recursively, one for the directories watched on their own. Each notifier
blocks in its own thread and hands debounced batches to the event loop. The plan is redone,
debounced, when a directory appears where no recursive watch will pick it up, a watched
directory goes away, a .gitignore or .git/info/exclude changes, or an ignored directory shows
up inside a recursive watch; directories the new plan adds are re-read once their watch is in
place, so files written before it are not missed. The re-read and re-parse run in a thread
(``asyncio.to_thread``) so the event loop that serves the editor never parses.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from watchfiles import Change

from lsp_agent.index.discovery import IgnoreRules
from lsp_agent.index.watchgroup import Batch, Failure, NotifyGroup, Stop
from lsp_agent.index.watchplan import WatchPlan, plan_watches
from lsp_agent.index.workspace import WorkspaceIndex, relative_path

log = logging.getLogger(__name__)

# Changes to these must reach the index even though .git itself is never indexed.
_ALWAYS_WATCHED = (".git/info/exclude",)
_RULE_FILES = (".gitignore",)
REPLAN_DELAY_S = 0.2  # quiet time after the last trigger before the watch set is redone
_MAX_REPLAN_WAIT_S = 1.0  # longest a re-plan is put off by further triggers
_MAX_BACKOFF_S = 30.0
# How long a replaced notifier keeps running beside its successor. A notifier drops what it
# holds undelivered when it is stopped, and its successor only sees what happens after its own
# watches exist: a change made just before the swap (still inside the old one's debounce) would
# be lost. Overlapping for longer than a debounce, with room for a loaded machine, delivers it;
# a change seen by both is refreshed twice, which is harmless.
_RETIRE_AFTER_S = 2.0


class _Replan:
    """Marker queued when a debounced re-plan is due."""


def _wanted(index: WorkspaceIndex, rel: str) -> bool:
    """Whether a change at ``rel`` should reach ``index.refresh``."""
    if rel in _ALWAYS_WATCHED:
        return True
    if rel == ".git" or rel.startswith(".git/"):
        return False
    try:
        return not index.is_ignored(rel)
    except (OSError, ValueError):
        return True  # when in doubt let refresh() decide


def _parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def _needs_replan(
    index: WorkspaceIndex, plan: WatchPlan, change: Change, rel: str, wanted: bool
) -> bool:
    """Whether this change makes the current watch set wrong (missing or too much)."""
    name = rel.rpartition("/")[2]
    if wanted and (rel in _ALWAYS_WATCHED or name in _RULE_FILES):
        return True  # dirs may have become ignored or un-ignored
    if change == Change.deleted:
        return rel in plan.flat or rel in plan.recursive
    parent = _parent(rel)
    if not wanted:
        # Something ignored below a recursive watch: the OS may now watch an ignored tree.
        if parent not in plan.dirs:
            return parent != "" and index.is_ignored(parent)
        return (
            change == Change.added
            and plan.covers_subtree(parent)
            and os.path.isdir(index.root / rel)
        )
    # A new folder: nothing watches it yet when its parent is flat-watched, and inside a
    # recursive watch a new plan keeps ``plan.dirs`` exact (and paths right after a rename).
    return change == Change.added and rel not in plan.dirs and os.path.isdir(index.root / rel)


def _sort_batch(
    index: WorkspaceIndex, plan: WatchPlan | None, changes: set[tuple[Change, str]]
) -> tuple[set[str], bool]:
    """The paths to refresh, and whether the watch set must be re-planned."""
    paths: set[str] = set()
    again = False
    for change, path in changes:
        try:
            rel = relative_path(index.root, path)
        except ValueError:
            continue
        if not rel:
            continue
        wanted = _wanted(index, rel)
        if wanted:
            paths.add(path)
        if plan is not None and not again:
            again = _needs_replan(index, plan, change, rel, wanted)
    return paths, again


async def watch(
    index: WorkspaceIndex,
    *,
    stop: asyncio.Event | None = None,
    debounce_ms: int = 50,
    on_change: Callable[[set[str]], None] | None = None,
) -> None:
    """Refresh ``index`` on every batch of file changes until ``stop`` is set (or cancelled)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Batch | Failure | Stop | _Replan] = asyncio.Queue()
    # Dedicated threads: each notifier blocks one for as long as it runs, and the loop's
    # default executor belongs to indexing.
    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="lsp-agent-watch")
    step = min(50, max(debounce_ms, 1))
    groups: list[NotifyGroup] = []
    retiring: list[NotifyGroup] = []  # replaced, still delivering for _RETIRE_AFTER_S
    plan: WatchPlan | None = None
    polling = False
    broken = False  # a notifier died: the next plan restarts even when unchanged
    failures = 0
    timer: asyncio.TimerHandle | None = None
    timer_since = 0.0  # when the pending re-plan was first asked for
    stop_task = asyncio.create_task(_forward_stop(stop, queue)) if stop is not None else None

    def schedule_replan(delay: float) -> None:
        nonlocal timer, timer_since
        if timer is not None:
            # Debounced, but a burst that never pauses (a long checkout) still gets a plan.
            if loop.time() - timer_since >= _MAX_REPLAN_WAIT_S:
                return
            timer.cancel()
        else:
            timer_since = loop.time()
        timer = loop.call_later(delay, queue.put_nowait, _Replan())

    async def replan() -> None:
        nonlocal groups, plan, polling, failures, broken
        new_plan = await asyncio.to_thread(
            lambda: plan_watches(
                index.root, rules=IgnoreRules.for_settings(index.root, index.settings)
            )
        )
        if new_plan == plan and not broken:
            return
        try:
            started = await NotifyGroup.start_all(
                index.root, new_plan, queue, loop, executor, stop, debounce_ms, step, polling
            )
        except FileNotFoundError as exc:  # a planned directory vanished meanwhile
            log.debug("watch plan out of date (%s); planning again", exc)
            failures, broken = failures + 1, True
            schedule_replan(min(REPLAN_DELAY_S * 2**failures, _MAX_BACKOFF_S))
            return
        except Exception as exc:  # any failure must be loud and recoverable
            failures, broken = failures + 1, True
            schedule_replan(min(REPLAN_DELAY_S * 2**failures, _MAX_BACKOFF_S))
            if polling:
                log.exception("file watching failed even by polling; retrying")
                return
            # Typically the inotify watch limit: keep live updates by polling the same set.
            log.error(
                "file watching failed (%s); polling %d directories from now on. "
                "Raising fs.inotify.max_user_watches restores event-based watching.",
                exc,
                len(new_plan.dirs),
            )
            polling = True
            return
        # The new watches are in place; the old ones stop once they have delivered what they hold.
        replaced = groups
        retiring.extend(replaced)
        loop.call_later(max(_RETIRE_AFTER_S, 4 * debounce_ms / 1000), _retire, replaced, retiring)
        old = plan
        groups, plan, broken = started, new_plan, False
        log.info(
            "watching %d directories (%d subtrees recursively, %d on their own)%s",
            len(new_plan.dirs),
            len(new_plan.recursive),
            len(new_plan.flat),
            " by polling" if polling else "",
        )
        if old is not None:
            added = sorted(new_plan.dirs - old.dirs)
            tops = [d for d in added if _parent(d) not in new_plan.dirs - old.dirs]
            if tops:  # files may have been written there before the watch existed
                await _refresh(index, {str(index.root / d) for d in tops}, on_change)

    try:
        await replan()
        while True:
            item = await queue.get()
            if isinstance(item, Stop) or (stop is not None and stop.is_set()):
                return
            if isinstance(item, _Replan):
                timer = None
                await replan()
                continue
            if isinstance(item, Failure):
                if item.group not in groups:
                    continue  # an old notifier that is being replaced
                log.warning("file watcher stopped (%s); restarting it", item.error)
                failures += 1
                broken = True
                schedule_replan(min(REPLAN_DELAY_S * 2**failures, _MAX_BACKOFF_S))
                continue
            if item.group in groups:
                failures = 0  # a notifier that delivers is healthy: back-off starts over
            # Stat calls for thousands of paths (a checkout) stay off the event loop.
            paths, again = await asyncio.to_thread(_sort_batch, index, plan, item.changes)
            if paths:
                await _refresh(index, paths, on_change)
            if again:
                schedule_replan(REPLAN_DELAY_S)
    finally:
        if timer is not None:
            timer.cancel()
        if stop_task is not None:
            stop_task.cancel()
        for group in groups + retiring:
            group.stop()  # each thread sees it within ``step`` ms and closes its notifier
        executor.shutdown(wait=False)


def _retire(replaced: list[NotifyGroup], retiring: list[NotifyGroup]) -> None:
    for group in replaced:
        group.stop()
        if group in retiring:
            retiring.remove(group)


async def _forward_stop(
    stop: asyncio.Event, queue: asyncio.Queue[Batch | Failure | Stop | _Replan]
) -> None:
    await stop.wait()
    queue.put_nowait(Stop())


async def _refresh(
    index: WorkspaceIndex, paths: set[str], on_change: Callable[[set[str]], None] | None
) -> None:
    try:
        changed = await asyncio.to_thread(index.refresh, paths)
    except Exception:
        log.exception("refreshing the index after %d file changes failed", len(paths))
        return
    if changed:
        log.debug("watcher: %d paths changed", len(changed))
        if on_change is not None:
            on_change(changed)
