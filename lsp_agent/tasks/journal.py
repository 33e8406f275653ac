"""The SQLite task journal: one row per task (spec and result as JSON) and one per run.

A finished-but-unapplied result survives a restart and a batch run can resume. Every call is one
short statement, cheap enough for the server's loop. Older journals are migrated in place when
opened (``_migrate``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsp_agent.tasks.model import ListedTask, Task, TaskState, summary_from_columns, usage_dict

log = logging.getLogger(__name__)


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
        # The last listing's rows and what they became: a row that did not change between two
        # listings (all but the one a running task updates) is not decoded again.
        self._decoded: dict[tuple[Any, ...], ListedTask] = {}
        self._db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across process kills in WAL mode (only power loss may drop the tail).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._migrate()
        self.interrupted = self._mark_interrupted()

    def _migrate(self) -> None:
        """Bring a journal written by an older version up to this schema, in place."""
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

    def change_key(self) -> tuple[int, int]:
        """Changes whenever any connection (this one or another process's) commits."""
        with self._tx() as db:
            return self._change_key(db)

    def _change_key(self, db: sqlite3.Connection) -> tuple[int, int]:
        return db.execute("PRAGMA data_version").fetchone()[0], self._writes

    def summaries(self, *, run_id: str | None = None, limit: int | None = None) -> list[ListedTask]:
        """Each task's ``task_summary``, newest first, from the small columns only: a listing
        never reads the result blobs (texts, diffs, edits), so it stays ~1 ms for 200 rows.
        The summaries are shared between calls until the journal changes: do not mutate them."""
        sql, params = _newest_first(
            "id, state, title, progress, message, usage, created_at, files, run_id", run_id, limit
        )
        with self._tx() as db:
            # Editors poll this every second or two; most polls find nothing new.
            key = (*self._change_key(db), run_id, limit)
            if self._listed is not None and self._listed[0] == key:
                return list(self._listed[1])
            rows = db.execute(sql, params).fetchall()
        decoded = {}
        for row in rows:
            item = self._decoded.get(row)
            if item is None:
                task_id, state, title, progress, message, usage, created_at, files, run = row
                summary = summary_from_columns(
                    task_id, state, title, progress, message, usage_dict(json.loads(usage)),
                    created_at, json.loads(files or "[]"), run,
                )  # fmt: skip
                item = ListedTask.of(created_at, summary)
            decoded[row] = item
        self._decoded = decoded
        listed = [decoded[row] for row in rows]
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
