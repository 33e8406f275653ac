"""Journal writes off the event loop.

TaskRunner journals every state and progress change from the loop thread. Each write is a SQLite
commit: usually ~1 ms, but 15–30 ms when a WAL checkpoint lands on a busy disk (measured during
bench_server.py), which a code action then waits for. ``DeferredJournal`` hands ``record`` to one
writer thread, coalescing repeated writes of the same task (only the latest state matters);
every other call goes straight to the journal. ``flush`` waits for the writer (shutdown).
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import sqlite3
import threading
from typing import Any

from lsp_agent.tasks.journal import TaskJournal
from lsp_agent.tasks.model import Task

log = logging.getLogger(__name__)


class DeferredJournal:
    def __init__(self, journal: TaskJournal) -> None:
        self._journal = journal
        self._pending: dict[str, Task] = {}  # task id -> latest copy, insertion ordered
        self._cond = threading.Condition()
        self._closing = False
        self._writing = False
        self._thread = threading.Thread(target=self._write_loop, name="journal", daemon=True)
        self._thread.start()
        # An editor that kills the pipe without shutdown still gets the queued states written.
        atexit.register(self.flush)

    def __getattr__(self, name: str) -> Any:  # get, list, set_state, mark_applied, ...
        return getattr(self._journal, name)

    def record(self, task: Task) -> None:
        # A shallow copy: the runner replaces result/usage wholesale, never mutates them.
        copy = dataclasses.replace(task)
        with self._cond:
            if self._closing:
                log.warning("journal closed; state %s of task %s not recorded", task.state, task.id)
                return
            self._pending.pop(task.id, None)
            self._pending[task.id] = copy
            self._cond.notify_all()  # the writer, not only a flusher, must wake

    def get(self, task_id: str) -> Task | None:
        with self._cond:
            pending = self._pending.get(task_id)
        return pending if pending is not None else self._journal.get(task_id)

    def set_state(self, task_id: str, state: Any, message: str | None = None) -> Task:
        self.flush()  # a read-modify-write must see the queued writes
        return self._journal.set_state(task_id, state, message)

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending and self._closing:
                    return
                batch = list(self._pending.values())
                self._pending.clear()
                self._writing = True
            for task in batch:
                try:
                    self._journal.record(task)
                except sqlite3.Error:
                    log.exception("cannot journal task %s", task.id)
            with self._cond:
                self._writing = False
                self._cond.notify_all()

    def flush(self) -> None:
        with self._cond:
            while (self._pending or self._writing) and self._thread.is_alive():
                self._cond.wait(0.1)

    def close(self) -> None:
        atexit.unregister(self.flush)
        self.flush()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(5)
        self._journal.close()
