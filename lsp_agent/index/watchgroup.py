"""One OS notifier over a set of directories, blocking in its own thread, feeding an asyncio queue.

``RustNotify`` is the notifier ``watchfiles.awatch`` wraps (documented as its Rust backend).
It is used directly because awatch takes a single ``recursive`` flag for all its paths and
builds its notifier on the event loop's thread; here construction (which adds one OS watch per
directory) runs in a worker thread, and the caller learns when the watches are in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from watchfiles import Change
from watchfiles._rust_notify import RustNotify

from lsp_agent.index.watchplan import WatchPlan

log = logging.getLogger(__name__)

_POLL_DELAY_MS = 300
_TIMEOUT_MS = 5000  # the notifier returns this often even when idle (keeps threads unstuck)


@dataclass(frozen=True, eq=False, slots=True)
class Batch:
    group: NotifyGroup
    changes: set[tuple[Change, str]]


@dataclass(frozen=True, eq=False, slots=True)
class Failure:
    group: NotifyGroup
    error: BaseException


class Stop:
    """Marker: the caller's stop event was set."""


class _Flag:
    """Stops one notifier, or all of them when the caller's stop event is set."""

    def __init__(self, outer: asyncio.Event | None) -> None:
        self._outer = outer
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:  # called from the notifier's thread every ``step`` ms
        return self._set or (self._outer is not None and self._outer.is_set())


def _post(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: object) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
        loop.call_soon_threadsafe(queue.put_nowait, item)


class NotifyGroup:
    def __init__(self, notify: RustNotify, flag: _Flag, recursive: bool) -> None:
        self._notify = notify
        self._flag = flag
        self.recursive = recursive

    @classmethod
    async def start(
        cls,
        paths: Sequence[str],
        *,
        recursive: bool,
        queue: asyncio.Queue[Any],
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        stop: asyncio.Event | None,
        debounce_ms: int,
        step_ms: int,
        polling: bool,
    ) -> NotifyGroup:
        """Watch ``paths``; returns once the OS watches exist (FileNotFoundError if one is gone)."""
        make = partial(RustNotify, list(paths), False, polling, _POLL_DELAY_MS, recursive, True)
        notify = await loop.run_in_executor(executor, make)
        group = cls(notify, _Flag(stop), recursive)
        loop.run_in_executor(executor, group._run, queue, loop, debounce_ms, step_ms)
        return group

    @classmethod
    async def start_all(
        cls,
        root: Path,
        plan: WatchPlan,
        queue: asyncio.Queue[Any],
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        stop: asyncio.Event | None,
        debounce_ms: int,
        step_ms: int,
        polling: bool,
    ) -> list[NotifyGroup]:
        """One notifier for the recursive subtrees, one for the flat directories."""
        groups: list[NotifyGroup] = []
        try:
            for recursive in (True, False):
                paths = plan.paths(root, recursive)
                if paths:
                    groups.append(
                        await cls.start(
                            paths,
                            recursive=recursive,
                            queue=queue,
                            loop=loop,
                            executor=executor,
                            stop=stop,
                            debounce_ms=debounce_ms,
                            step_ms=step_ms,
                            polling=polling,
                        )
                    )
        except BaseException:
            for group in groups:
                group.stop()
            raise
        return groups

    def stop(self) -> None:
        """The thread returns within ``step_ms`` and closes the notifier (its OS watches)."""
        self._flag.set()

    def _run(
        self,
        queue: asyncio.Queue[Any],
        loop: asyncio.AbstractEventLoop,
        debounce_ms: int,
        step_ms: int,
    ) -> None:
        try:
            while True:
                result = self._notify.watch(debounce_ms, step_ms, _TIMEOUT_MS, self._flag)
                if result == "stop":
                    return
                if isinstance(result, str):  # "timeout" ("signal" only reaches the main thread)
                    continue
                changes = {(Change(change), path) for change, path in result}
                _post(loop, queue, Batch(self, changes))
        except Exception as exc:  # reported to the loop, which restarts us
            log.debug("notifier failed", exc_info=True)
            _post(loop, queue, Failure(self, exc))
        finally:
            self._notify.close()
