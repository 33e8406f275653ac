"""The task model, a concurrency-limited runner, and the SQLite journal.

Shared by the language server and the batch command. The journal keeps one row per task with
its spec and result as JSON, so a finished-but-unapplied result survives a restart and a batch
run can resume. Every journal call is one short statement, cheap enough for the server's loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger(__name__)


class TaskState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    UNVERIFIED = "unverified"  # changes made, but the project's checks still fail: not applied
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUDGET_EXCEEDED = "budget_exceeded"
    NO_CHANGES = "no_changes"
    APPLIED = "applied"
    REJECTED = "rejected"

    @property
    def finished(self) -> bool:
        """The worker is done with it (whatever the outcome); only apply/reject may follow."""
        return self not in (TaskState.QUEUED, TaskState.RUNNING)


USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "requests",
    "attempts",
    "estimated_tokens",
)


def new_task_id() -> str:
    return f"t-{secrets.token_hex(6)}"


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, paths, tuples and mappings to plain JSON values.

    Results carry dataclasses from other modules (TaskResult, FileChange, Usage); converting
    generically keeps this module free of imports from the worker.
    """
    to_json = getattr(value, "to_json", None)
    if callable(to_json) and not isinstance(value, type):
        return to_jsonable(to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def usage_dict(usage: Any) -> dict[str, int]:
    """Normalise a Usage dataclass, a mapping or None to the four counters."""
    if usage is None:
        return {key: 0 for key in USAGE_KEYS}
    if not isinstance(usage, Mapping):
        usage = to_jsonable(usage)
    return {key: int(usage.get(key) or 0) for key in USAGE_KEYS}


@dataclass
class Task:
    id: str
    spec: dict[str, Any]  # the TaskSpec as JSON
    state: TaskState = TaskState.QUEUED
    title: str = ""
    progress: int = 0  # percent, for $/progress and the batch progress bar
    message: str = ""
    usage: dict[str, int] = field(default_factory=lambda: usage_dict(None))
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None  # the TaskResult as JSON (changes with new text)
    run_id: str = ""  # batch run this task belongs to; "" for tasks started by the server
    key: str = ""  # stable name of the task within its run (resume matches on it)

    @classmethod
    def new(cls, spec: Any, *, title: str = "", run_id: str = "", key: str = "") -> Task:
        spec_json = to_jsonable(spec)
        return cls(
            id=new_task_id(),
            spec=spec_json,
            title=title or str(spec_json.get("title") or ""),
            run_id=run_id,
            key=key,
        )

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def files(self) -> list[str]:
        """Files the task changed (from its result), else the files it was asked to work on."""
        if self.result and self.result.get("changes"):
            return [c["path"] for c in self.result["changes"]]
        return list(self.spec.get("files") or [])


def task_summary(task: Task) -> dict[str, Any]:
    """A task as clients see it: the ``lspAgent/tasks`` request and ``lsp-agent tasks --json``
    (camelCase, the LSP convention; ``createdAt`` in ISO 8601 UTC)."""
    return _summary(
        task.id, str(task.state), task.title, task.progress, task.message, task.usage,
        task.created_at, task.files, task.run_id,
    )  # fmt: skip


class ListedTask(NamedTuple):
    created_at: float  # epoch seconds: the summary's createdAt is rounded to the second
    summary: dict[str, Any]


def _summary(
    task_id: str,
    state: str,
    title: str,
    progress: int,
    message: str,
    usage: Mapping[str, int],
    created_at: float,
    files: list[str],
    run_id: str,
) -> dict[str, Any]:
    # The one client-facing shape, built from a Task or straight from journal columns.
    created = datetime.datetime.fromtimestamp(created_at, datetime.UTC)
    return {
        "id": task_id,
        "state": state,
        "title": title,
        "progress": progress,
        "message": message,
        "tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0),
        "cachedTokens": usage.get("cached_tokens", 0),
        "createdAt": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "files": files,
        "runId": run_id or None,
    }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    progress INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    usage TEXT NOT NULL,
    spec TEXT NOT NULL,
    result TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    owner TEXT NOT NULL DEFAULT '',
    files TEXT
);
CREATE INDEX IF NOT EXISTS tasks_run ON tasks (run_id, key);

CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    meta TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS runs_fingerprint ON runs (fingerprint, created_at);
"""

_COLUMNS = (
    "id, run_id, key, state, title, progress, message, usage, spec, result, "
    "created_at, updated_at, started_at, finished_at"
)
# The process that last wrote a row. A queued or running task whose owner process is gone was
# interrupted (a killed server or batch run) and would otherwise show "running" forever.


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_LIVE_STATES = (TaskState.QUEUED.value, TaskState.RUNNING.value)


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's process (a shared cache dir): cannot tell, leave it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class RunRecord:
    id: str
    fingerprint: str
    meta: dict[str, Any]
    created_at: float
    finished_at: float | None


class TaskJournal:
    """One SQLite file (WAL) per workspace. Thread-safe; several processes may share it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._writes = 0  # this connection's commits; data_version counts the others'
        self._listed: tuple[tuple[Any, ...], list[ListedTask]] | None = None
        self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across process kills in WAL mode (only power loss may drop the tail).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(tasks)")}
        if "owner" not in columns:  # a journal written before owners were recorded
            self._db.execute("ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
        if "files" not in columns:  # before listings read columns only: fill it once
            self._db.execute("ALTER TABLE tasks ADD COLUMN files TEXT")
        self._backfill_files()
        # A covering index: the listing reads this b-tree only. In the table, created_at and
        # files sit after the result blob, and reaching them walks its overflow pages.
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS tasks_listing ON tasks (created_at DESC, id, state, "
            "title, progress, message, usage, files, run_id)"
        )
        self.interrupted = self._mark_interrupted()

    def _backfill_files(self) -> None:
        with self._tx() as db:
            rows = db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE files IS NULL").fetchall()
            for row in rows:
                task = _task_from_row(row)
                db.execute(
                    "UPDATE tasks SET files = ? WHERE id = ?", (json.dumps(task.files), task.id)
                )

    def _mark_interrupted(self) -> list[str]:
        """Tasks left queued or running by a process that no longer exists become failed."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, owner FROM tasks WHERE state IN (?, ?) AND owner != ''", _LIVE_STATES
            ).fetchall()
            dead = [(task_id, owner) for task_id, owner in rows if not _owner_alive(owner)]
            for task_id, owner in dead:
                db.execute(
                    "UPDATE tasks SET state = ?, message = ?, finished_at = ?, updated_at = ? "
                    "WHERE id = ?",
                    (
                        TaskState.FAILED.value,
                        f"interrupted: the process running it ({owner}) stopped",
                        time.time(),
                        time.time(),
                        task_id,
                    ),
                )
        if dead:
            log.warning("%d task(s) were interrupted by a stopped process", len(dead))
        return [task_id for task_id, _ in dead]

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> TaskJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, task: Task) -> None:
        task.updated_at = time.time()
        row = (
            task.id,
            task.run_id,
            task.key,
            str(task.state),
            task.title,
            task.progress,
            task.message,
            json.dumps(task.usage),
            json.dumps(task.spec),
            None if task.result is None else json.dumps(task.result),
            task.created_at,
            task.updated_at,
            task.started_at,
            task.finished_at,
            _owner(),
            json.dumps(task.files),
        )
        with self._tx() as db:
            self._writes += 1
            db.execute(
                f"INSERT OR REPLACE INTO tasks ({_COLUMNS}, owner, files) "
                f"VALUES ({','.join('?' * 16)})",
                row,
            )

    def get(self, task_id: str) -> Task | None:
        with self._tx() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else _task_from_row(row)

    def list(self, *, run_id: str | None = None, limit: int | None = None) -> list[Task]:
        """Newest first; ``run_id`` restricts to one batch run."""
        sql, params = _newest_first(_COLUMNS, run_id, limit)
        with self._tx() as db:
            rows = db.execute(sql, params).fetchall()
        return [_task_from_row(row) for row in rows]

    def summaries(self, *, run_id: str | None = None, limit: int | None = None) -> list[ListedTask]:
        """Each task's ``task_summary``, newest first, from the small columns only: a listing
        never reads the result blobs (texts, diffs, edits), so it stays ~1 ms for 200 rows.
        The summaries are shared between calls until the journal changes: do not mutate them."""
        sql, params = _newest_first(
            "id, state, title, progress, message, usage, created_at, files, run_id", run_id, limit
        )
        with self._tx() as db:
            # Editors poll this every second or two; most polls find nothing new.
            key = (db.execute("PRAGMA data_version").fetchone()[0], self._writes, run_id, limit)
            if self._listed is not None and self._listed[0] == key:
                return list(self._listed[1])
            rows = db.execute(sql, params).fetchall()
        listed = []
        for task_id, state, title, progress, message, usage, created_at, files, run in rows:
            summary = _summary(
                task_id, state, title, progress, message, usage_dict(json.loads(usage)),
                created_at, json.loads(files or "[]"), run,
            )  # fmt: skip
            listed.append(ListedTask(created_at, summary))
        self._listed = (key, listed)
        return list(listed)

    def prune(
        self, *, keep_tasks: int, keep_days: float, transcripts: Path | None = None
    ) -> list[str]:
        """Delete finished tasks past the newest ``keep_tasks`` or older than ``keep_days``
        (0 = no such limit), and their transcripts. Queued and running tasks always stay.
        Returns the deleted ids."""
        finished = tuple(state.value for state in TaskState if state.finished)
        marks = ",".join("?" * len(finished))
        doomed: set[str] = set()
        with self._tx() as db:
            if keep_tasks > 0:
                rows = db.execute(
                    f"SELECT id FROM tasks WHERE state IN ({marks}) "
                    "ORDER BY created_at DESC, id LIMIT -1 OFFSET ?",
                    (*finished, keep_tasks),
                ).fetchall()
                doomed.update(row[0] for row in rows)
            if keep_days > 0:
                cutoff = time.time() - keep_days * 86400
                rows = db.execute(
                    f"SELECT id FROM tasks WHERE state IN ({marks}) AND created_at < ?",
                    (*finished, cutoff),
                ).fetchall()
                doomed.update(row[0] for row in rows)
            if doomed:
                self._writes += 1
                db.executemany("DELETE FROM tasks WHERE id = ?", [(i,) for i in sorted(doomed)])
        if transcripts is not None:
            for task_id in doomed:
                (transcripts / f"{task_id}.jsonl").unlink(missing_ok=True)
        return sorted(doomed)

    def mark_applied(self, task_id: str) -> Task:
        return self.set_state(task_id, TaskState.APPLIED)

    def set_state(self, task_id: str, state: TaskState, message: str | None = None) -> Task:
        """Change a journaled task's state (applied, rejected, ...); KeyError if unknown."""
        task = self.get(task_id)
        if task is None:
            raise KeyError(f"no task {task_id!r} in the journal")
        task.state = state
        if message is not None:
            task.message = message
        self.record(task)
        return task

    def start_run(
        self, fingerprint: str, meta: Mapping[str, Any], *, run_id: str | None = None
    ) -> RunRecord:
        run_id = run_id or f"r-{secrets.token_hex(6)}"
        run = RunRecord(run_id, fingerprint, dict(meta), time.time(), None)
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (id, fingerprint, meta, created_at) VALUES (?, ?, ?, ?)",
                (run.id, fingerprint, json.dumps(run.meta), run.created_at),
            )
        return run

    def finish_run(self, run_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET finished_at = ? WHERE id = ?", (time.time(), run_id))

    def update_run(self, run_id: str, meta: Mapping[str, Any]) -> None:
        """Replace a run's meta (a goal run keeps its ledger there); KeyError if unknown."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE runs SET meta = ? WHERE id = ?", (json.dumps(dict(meta)), run_id)
            )
        if cursor.rowcount == 0:
            raise KeyError(f"no run {run_id!r} in the journal")

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT id, fingerprint, meta, created_at, finished_at FROM runs WHERE id = ?",
                (run_id,),
            ).fetchone()
        return None if row is None else RunRecord(row[0], row[1], json.loads(row[2]), *row[3:])

    def list_runs(self, *, fingerprint: str | None = None, limit: int = 50) -> list[RunRecord]:
        """Newest first; ``fingerprint`` restricts to runs of one kind (e.g. ``"goal"``)."""
        sql = "SELECT id, fingerprint, meta, created_at, finished_at FROM runs"
        params: list[Any] = []
        if fingerprint is not None:
            sql += " WHERE fingerprint = ?"
            params.append(fingerprint)
        sql += " ORDER BY created_at DESC LIMIT ?"
        params.append(limit)
        with self._tx() as db:
            rows = db.execute(sql, params).fetchall()
        return [RunRecord(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def latest_run(self, fingerprint: str) -> RunRecord | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT id, fingerprint, meta, created_at, finished_at FROM runs "
                "WHERE fingerprint = ? ORDER BY created_at DESC LIMIT 1",
                (fingerprint,),
            ).fetchone()
        if row is None:
            return None
        return RunRecord(row[0], row[1], json.loads(row[2]), row[3], row[4])


def _newest_first(columns: str, run_id: str | None, limit: int | None) -> tuple[str, list[Any]]:
    """The listing query (newest first, optionally one run's, optionally the first N) for
    ``list`` and ``summaries``, which differ only in the columns they read."""
    sql = f"SELECT {columns} FROM tasks"
    params: list[Any] = []
    if run_id is not None:
        sql += " WHERE run_id = ?"
        params.append(run_id)
    sql += " ORDER BY created_at DESC, id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def _task_from_row(row: tuple[Any, ...]) -> Task:
    return Task(
        id=row[0],
        run_id=row[1],
        key=row[2],
        state=TaskState(row[3]),
        title=row[4],
        progress=row[5],
        message=row[6],
        usage=usage_dict(json.loads(row[7])),
        spec=json.loads(row[8]),
        result=None if row[9] is None else json.loads(row[9]),
        created_at=row[10],
        updated_at=row[11],
        started_at=row[12],
        finished_at=row[13],
    )


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
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._semaphore = asyncio.Semaphore(concurrency)
        self._journal = journal
        self._on_update = on_update
        self._running: dict[str, asyncio.Task[Task]] = {}
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
        """Wait for every live task; returns the tasks this runner has seen."""
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
        if handle.cancelled():
            log.info("task %s cancelled", task_id)
        elif handle.exception() is not None:
            log.error("task %s crashed", task_id, exc_info=handle.exception())
