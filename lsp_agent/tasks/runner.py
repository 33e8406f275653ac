"""A concurrency-limited runner: tasks as asyncio tasks, every transition journaled."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lsp_agent.tasks.journal import TaskJournal
from lsp_agent.tasks.model import Task, TaskState, to_jsonable, usage_dict

log = logging.getLogger(__name__)

# Finished tasks a runner keeps in ``tasks`` after the live ones: the journal is the record, and
# readers (lspAgent/tasks, applyTask, lspAgent/context) fall back to it. Without a bound a
# server's runner held every task it ever ran, result blobs included.
KEEP_FINISHED = 50


# The work a runner executes: given a progress callback, return a result object with ``state``
# (a TaskState value), and optionally ``title``, ``summary``, ``usage`` and ``error`` (duck-typed
# to the orchestrator's TaskResult).
ProgressCallback = Callable[[Any], None]
Work = Callable[[ProgressCallback], Awaitable[Any]]
Listener = Callable[[Task], None]


class TaskRunner:
    """Runs tasks as asyncio tasks, at most ``concurrency`` at once, journaling every transition.

    ``on_update`` fires on each state or progress change (the server maps it to ``$/progress``;
    the batch command to its progress display). A failing listener is logged, never fatal.
    """

    def __init__(
        self,
        *,
        concurrency: int = 2,
        journal: TaskJournal | None = None,
        on_update: Listener | None = None,
        keep_finished: int = KEEP_FINISHED,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._keep_finished = max(0, keep_finished)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._journal = journal
        self._on_update = on_update
        self._running: dict[str, asyncio.Task[Task]] = {}
        # The live tasks and the ``keep_finished`` that finished last.
        self.tasks: dict[str, Task] = {}

    def start(self, task: Task, work: Work) -> asyncio.Task[Task]:
        """Queue ``task``; the returned asyncio task resolves to the finished Task."""
        if task.id in self._running:
            raise ValueError(f"task {task.id} is already running")
        self.tasks[task.id] = task
        task.state = TaskState.QUEUED
        self._publish(task)
        handle = asyncio.create_task(self._run(task, work), name=f"lsp-agent {task.id}")
        self._running[task.id] = handle
        handle.add_done_callback(lambda h, tid=task.id: self._finished(tid, h))
        return handle

    def cancel(self, task_id: str) -> bool:
        """Cancel a queued or running task; False when it is not live here."""
        handle = self._running.get(task_id)
        if handle is None or handle.done():
            return False
        handle.cancel()
        return True

    def active(self) -> list[Task]:
        return [self.tasks[tid] for tid, h in self._running.items() if not h.done()]

    async def wait(self) -> list[Task]:
        """Wait for every live task; returns the tasks still held (see ``tasks``)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)
        return list(self.tasks.values())

    async def shutdown(self) -> None:
        for task_id in list(self._running):
            self.cancel(task_id)
        await self.wait()

    async def _run(self, task: Task, work: Work) -> Task:
        try:
            async with self._semaphore:
                task.state = TaskState.RUNNING
                task.started_at = time.time()
                task.message = "started"
                self._publish(task)
                result = await work(lambda event: self._progress(task, event))
            self._complete(task, result)
        except asyncio.CancelledError:
            task.state = TaskState.CANCELLED
            task.message = "cancelled"
            task.finished_at = time.time()
            self._publish(task)
            raise
        except Exception as exc:
            log.exception("task %s failed", task.id)
            task.state = TaskState.FAILED
            task.message = f"{type(exc).__name__}: {exc}"
            task.result = {"state": "failed", "error": task.message, "changes": []}
            task.finished_at = time.time()
            self._publish(task)
        return task

    def _complete(self, task: Task, result: Any) -> None:
        result_json = to_jsonable(result)
        if not isinstance(result_json, dict):
            raise TypeError(f"task work returned {type(result).__name__}, expected a result")
        task.result = result_json
        task.state = TaskState(result_json.get("state") or TaskState.SUCCEEDED)
        task.usage = usage_dict(result_json.get("usage"))
        task.title = str(result_json.get("title") or task.title)
        task.message = str(result_json.get("error") or result_json.get("summary") or task.state)
        task.progress = 100
        task.finished_at = time.time()
        self._publish(task)

    def _progress(self, task: Task, event: Any) -> None:
        percent = getattr(event, "percent", None)  # the worker's ProgressEvent knows its stage
        if not isinstance(percent, int):
            done = int(getattr(event, "done", 0) or 0)
            total = int(getattr(event, "total", 0) or 0)
            percent = done * 100 // total if total > 0 else None
        if percent is not None:
            # Monotonic: a stage that comes round again (coders after review) never moves
            # the bar back.
            task.progress = max(task.progress, min(100, percent))
        message = getattr(event, "message", None)
        stage = getattr(event, "stage", None)
        task.message = str(message or stage or task.message)
        usage = getattr(event, "usage", None)
        if usage is not None:
            task.usage = usage_dict(usage)
        self._publish(task)

    def _publish(self, task: Task) -> None:
        if self._journal is not None:
            try:
                self._journal.record(task)
            except sqlite3.Error:
                log.exception("cannot journal task %s", task.id)
        if self._on_update is not None:
            try:
                self._on_update(task)
            except Exception:
                log.exception("task listener failed for %s", task.id)

    def _finished(self, task_id: str, handle: asyncio.Task[Task]) -> None:
        self._running.pop(task_id, None)
        task = self.tasks.pop(task_id, None)
        if task is not None:
            self.tasks[task_id] = task  # finished ones in finishing order: the oldest go first
        self._forget_old()
        if handle.cancelled():
            log.info("task %s cancelled", task_id)
        elif handle.exception() is not None:
            log.error("task %s crashed", task_id, exc_info=handle.exception())

    def _forget_old(self) -> None:
        finished = [task_id for task_id in self.tasks if task_id not in self._running]
        for task_id in finished[: max(0, len(finished) - self._keep_finished)]:
            del self.tasks[task_id]
